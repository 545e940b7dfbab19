// Types of ./realtime-client.js, the built client package's browser bundle that serve.ts serves
// beside the page script (esbuild keeps that import external). Same API as the sources.
export * from '../../client/index';
