// The two undici modules lib/registry/http.ts loads directly (see undici() there).
declare module 'undici/lib/dispatcher/agent.js';
declare module 'undici/lib/api/api-request.js';
