/**
 * The Cedar request of a gateway request, as plain JSON: the principal entity (with its
 * groups and role as parents), the action, the resource entity (with its server as
 * parent). Pure, so it is unit tested; src/policy/engine.ts hands it to Cedar.
 */
import type { Principal } from '../contracts/api';
import { CEDAR_NAMESPACE, type PolicyAction } from '../contracts/policy';

export interface EntityUid {
  type: string;
  id: string;
}

export interface CedarEntity {
  uid: EntityUid;
  attrs: Record<string, string>;
  parents: EntityUid[];
}

/** What a request is about, as the upstream server names it. */
export type PolicyResource =
  { kind: 'tool'; server: string; name: string } | { kind: 'resource'; server: string; uri: string } | { kind: 'prompt'; server: string; name: string };

const T = (name: string) => `${CEDAR_NAMESPACE}::${name}`;

export function actionUid(action: PolicyAction): EntityUid {
  return { type: T('Action'), id: action };
}

/** The principal and the entities it brings: itself, its groups, its role. */
export function principalEntities(principal: Principal): { uid: EntityUid; entities: CedarEntity[] } {
  const uid = { type: T('User'), id: principal.name };
  const groups = principal.groups.map((g) => ({ type: T('Group'), id: g }));
  const role = { type: T('Role'), id: principal.role };
  return {
    uid,
    entities: [
      { uid, attrs: { name: principal.name, role: principal.role, source: principal.source }, parents: [...groups, role] },
      ...groups.map((g) => ({ uid: g, attrs: {}, parents: [] })),
      { uid: role, attrs: {}, parents: [] },
    ],
  };
}

/** The resource and the entities it brings: itself and its server. */
export function resourceEntities(resource: PolicyResource): { uid: EntityUid; entities: CedarEntity[] } {
  const server = { type: T('Server'), id: resource.server };
  const { uid, attrs } =
    resource.kind === 'tool'
      ? { uid: { type: T('Tool'), id: `${resource.server}/${resource.name}` }, attrs: { server: resource.server, name: resource.name } }
      : resource.kind === 'prompt'
        ? { uid: { type: T('Prompt'), id: `${resource.server}/${resource.name}` }, attrs: { server: resource.server, name: resource.name } }
        : { uid: { type: T('Resource'), id: `${resource.server}/${resource.uri}` }, attrs: { server: resource.server, uri: resource.uri } };
  return {
    uid,
    entities: [
      { uid, attrs, parents: [server] },
      { uid: server, attrs: {}, parents: [] },
    ],
  };
}

/** Everything about a principal that a decision may depend on, as a cache key. */
export function principalKey(principal: Principal): string {
  return JSON.stringify([principal.name, principal.role, principal.source, principal.groups]);
}

export function resourceKey(resource: PolicyResource): string {
  return resource.kind === 'resource' ? `resource\n${resource.server}\n${resource.uri}` : `${resource.kind}\n${resource.server}\n${resource.name}`;
}

/** How a resource is named in messages: `Mcpd::Tool::"gitea/get_me"`. */
export function describeResource(resource: PolicyResource): string {
  const { uid } = resourceEntities(resource);
  return `${uid.type}::${JSON.stringify(uid.id)}`;
}

/** Line and column (both from 1) of a character offset in a text. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < Math.min(offset, text.length); i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
