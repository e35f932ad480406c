// Module resolution hook of the Colyseus server process of the `server` suite. @colyseus/core
// 0.16 takes @colyseus/schema 3 as a peer dependency, but pnpm resolves that peer from this
// package, whose @colyseus/schema is 5 (for the serialization and replication suites): here
// every import of '@colyseus/schema' gets the 3.x installed under the alias 'colyseus-schema3'.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === '@colyseus/schema' || specifier.startsWith('@colyseus/schema/')) {
    return nextResolve(specifier.replace('@colyseus/schema', 'colyseus-schema3'), {
      ...context,
      parentURL: import.meta.url,
    });
  }
  return nextResolve(specifier, context);
}
