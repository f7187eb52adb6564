/**
 * Whether the registry client module has been loaded in this process: the CLI closes registry
 * connections before it exits only then, instead of loading the client (and its TLS and auth
 * modules) at the end of every command that never reached a registry.
 */
export const registryModule = { loaded: false };
