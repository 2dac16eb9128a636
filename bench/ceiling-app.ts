/**
 * The ceiling: a bare Koa app that only reads, parses and validates the CloudEvent and answers 204 —
 * what any CloudEvents receiver on this stack must pay. kube-event-rules is measured against it.
 */
import { createServer } from 'node:http';
import Koa from 'koa';
import getRawBody from 'raw-body';
import { HTTP, type CloudEvent } from 'cloudevents';

const app = new Koa();
app.use(async (ctx) => {
  if (ctx.method === 'GET') {
    ctx.status = 200;
    ctx.body = 'ok';
    return;
  }
  const body = await getRawBody(ctx.req, { limit: 1024 * 1024, encoding: 'utf8' });
  const parsed = HTTP.toEvent({ headers: ctx.headers, body }) as CloudEvent<unknown> | CloudEvent<unknown>[];
  for (const event of Array.isArray(parsed) ? parsed : [parsed]) event.validate();
  ctx.status = 204;
  ctx.body = null;
});
const handle = app.callback(); // answers its own errors: its promise never rejects
const server = createServer((req, res) => void handle(req, res));
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
