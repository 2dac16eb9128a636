/**
 * A real HTTPS receiver on 127.0.0.1: answers 204 to every request and records it with the TLS connection it
 * came on (to see keep-alive reuse) and the client certificate's subject, if one was presented.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface HttpsReceiver {
  url: string;
  port: number;
  received: { path: string; body: string; connection: number; clientCn?: string }[];
  /** TLS connections accepted so far, and how many are still open. */
  connections(): { accepted: number; open: number[] };
  /** Serve another certificate from now on (connections already open keep theirs). */
  setCertificate(cert: string, key: string): void;
  close(): Promise<void>;
}

export async function startHttpsReceiver(options: {
  cert: string;
  key: string;
  clientCa?: string;
  port?: number;
}): Promise<HttpsReceiver> {
  const received: HttpsReceiver['received'] = [];
  const sockets = new Map<TLSSocket, number>();
  let accepted = 0;
  const server: Server = createServer({
    cert: options.cert,
    key: options.key,
    ...(options.clientCa ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.set(socket, ++accepted);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('request', (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const socket = req.socket as TLSSocket;
      const peer = options.clientCa ? socket.getPeerCertificate() : undefined;
      received.push({
        path: req.url ?? '',
        body,
        connection: sockets.get(socket) ?? 0,
        clientCn: peer?.subject?.CN as string | undefined,
      });
      res.writeHead(204).end();
    });
  });
  server.on('tlsClientError', () => undefined); // a client that does not trust us: the test asserts the client side
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    received,
    connections: () => ({ accepted, open: [...sockets.values()] }),
    setCertificate: (cert, key) =>
      server.setSecureContext({ cert, key, ...(options.clientCa ? { ca: options.clientCa } : {}) }),
    async close() {
      server.closeAllConnections();
      for (const socket of sockets.keys()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
