// Standalone ingress process (docker-compose, production): HTTP on INGRESS_HOST:INGRESS_PORT against the configured Temporal and database.
import { createPool } from '../db/pool';
import { loadConfig, loadPolicyForConfig } from '../config/load';
import { webhookSettingsFromConfig } from './webhooks/routes';
import { connectClient } from '../temporal/connection';
import { buildIngress } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.temporal.address || !config.databaseUrl) {
    console.error(
      'billops ingress: TEMPORAL_ADDRESS and DATABASE_URL must be set for a standalone ingress (npm start runs embedded defaults instead).',
    );
    process.exit(2);
  }
  const client = await connectClient({ ...config.temporal, address: config.temporal.address });
  const pool = createPool(config.databaseUrl);
  const app = buildIngress({
    client,
    pool,
    webhooks: webhookSettingsFromConfig(config, loadPolicyForConfig(config)),
    access: config.access,
  });
  await app.listen({ host: config.ingress.host, port: config.ingress.port });
  console.log(`billops ingress: listening on http://${config.ingress.host}:${config.ingress.port}`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void app
        .close()
        .then(() => pool.end())
        .then(() => client.connection.close())
        .then(() => process.exit(0));
    });
  }
}

main().catch((err: Error) => {
  console.error(`billops ingress: ${err.message}`);
  process.exit(1);
});
