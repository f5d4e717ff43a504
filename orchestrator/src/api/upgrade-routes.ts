/**
 * WebSocket upgrade requests, routed by path. Several endpoints (`/ws`, `/agents`) share one
 * HTTP server; an upgrade to a path none of them serves is answered 404 and closed, instead of
 * being left hanging because each endpoint assumed another one might take it.
 *
 * @module
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Takes an upgrade request for the path it was registered for. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const routers = new WeakMap<Server, Map<string, UpgradeHandler>>();

/**
 * Serves upgrade requests for `path` on `server` with `handler`. Returns the function that
 * stops it; a path may have one handler at a time.
 */
export function routeUpgrade(server: Server, path: string, handler: UpgradeHandler): () => void {
  let routes = routers.get(server);
  if (!routes) {
    const table = new Map<string, UpgradeHandler>();
    routes = table;
    routers.set(server, table);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      const route = table.get(pathname);
      if (route) return route(req, socket, head);
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }
  if (routes.has(path)) throw new Error(`a WebSocket endpoint already serves ${path}`);
  routes.set(path, handler);
  const table = routes;
  return () => {
    if (table.get(path) === handler) table.delete(path);
  };
}
