/**
 * The names handlers and event types may take: PascalCase, at most 64 characters. One pattern,
 * so a name a project may declare is exactly a name the ingress and the admin API accept.
 */
export const PASCAL_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/
