/** The part of express 5 the express anchor uses (express ships no types, and @types/express is not worth a dependency). */
declare module 'express' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

  interface Application {
    (req: IncomingMessage, res: ServerResponse): void;
    use(handler: Handler): this;
  }

  function express(): Application;
  export default express;
}
