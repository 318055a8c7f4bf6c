// Loopback HTTP servers for tests that stand in front of a real one (stripe-mock) to watch or cut what goes over the wire.
import { request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Sends `req` on to `upstream` as it came (its body piped, or `body` when already read) and relays the answer; a 502
 * when the upstream cannot be reached. `onStatus` hears the status the caller gets.
 */
export function forward(
  upstream: URL,
  req: IncomingMessage,
  res: ServerResponse,
  opts: { body?: Buffer; onStatus?: (status: number) => void } = {},
): void {
  const onward = httpRequest(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
    },
    (answer) => {
      const status = answer.statusCode ?? 502;
      opts.onStatus?.(status);
      res.writeHead(status, answer.headers);
      answer.pipe(res);
    },
  );
  onward.on('error', () => {
    opts.onStatus?.(502);
    res.writeHead(502);
    res.end();
  });
  if (opts.body) onward.end(opts.body);
  else req.pipe(onward);
}

/** Listens on a free loopback port: its base URL, and a close that drops open connections first. */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
