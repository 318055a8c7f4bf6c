// Run as `node --import tsx test/support/embeddedSessions.ts <dataDir> <port>` (PGlite is ESM, which Jest cannot load):
// three pools in turn name the same prepared statement on npm start's embedded PGlite; prints their answers as JSON.
import { startEmbeddedPostgres } from '../../runtime/embeddedPostgres';
import { createPool } from '../../db/pool';

async function main(dataDir: string, port: number): Promise<void> {
  const embedded = await startEmbeddedPostgres({ dataDir, port });
  const answers: unknown[] = [];
  try {
    for (const n of [1, 2, 3]) {
      const pool = createPool(embedded.url, { max: 1 });
      try {
        const { rows } = await pool.query({
          name: 'embedded-probe',
          text: 'SELECT $1::int * 10 AS n',
          values: [n],
        });
        answers.push(rows[0]);
      } catch (err) {
        answers.push({ error: (err as Error).message });
      }
      await pool.end();
      // The server takes one connection at a time and lets the last one go on a later turn of its event loop.
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    await embedded.close();
  }
  process.stdout.write(`${JSON.stringify(answers)}\n`);
}

void main(process.argv[2]!, Number(process.argv[3]));
