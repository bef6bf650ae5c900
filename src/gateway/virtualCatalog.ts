/**
 * What a virtual server exposes, from its spec and its servers' lists. Pure (no
 * I/O), so filtering, renaming and clash detection are unit-tested on their own:
 * - an item passes when it matches an allow glob (or there is no allow list) and
 *   no deny glob (deny wins);
 * - a tool's override replaces its name (used as given), its description, and
 *   merges its annotations;
 * - naming `prefix` names the rest `<server>__<name>` (names.ts); `none` keeps them;
 * - two exposed items with one name are a clash: neither is served (a client must
 *   never get one server's tool when it asked for the other's) and the clash is
 *   reported naming both.
 */
import MiniSearch from 'minisearch';
import picomatch from 'picomatch';
import type { ItemFilter, VirtualServerSpec } from '../contracts/virtualServer';
import { mangle, type QualifiedName } from './names';

export type Item = Record<string, unknown>;
export interface ServerItems {
  server: string;
  items: Item[];
}

export interface Clash {
  name: string;
  /** Every `<server>/<original name>` that would be served under the name. */
  owners: string[];
}

export interface Exposed {
  items: Item[];
  routes: Map<string, QualifiedName>;
  clashes: Clash[];
}

type Matcher = (value: string) => boolean;
const compiled = new WeakMap<ItemFilter, Matcher>();

/** Whether a value passes a filter; globs are compiled once per filter object. */
export function passes(filter: ItemFilter | undefined, value: string): boolean {
  if (!filter) return true;
  let matcher = compiled.get(filter);
  if (!matcher) {
    // dot: names and URIs may start with "."; a glob is about the whole value either way.
    const allow = filter.allow ? picomatch(filter.allow, { dot: true }) : () => true;
    const deny = filter.deny?.length ? picomatch(filter.deny, { dot: true }) : () => false;
    matcher = (value) => allow(value) && !deny(value);
    compiled.set(filter, matcher);
  }
  return matcher(value);
}

function describeClash(owners: QualifiedName[]): string[] {
  return owners.map((o) => `${o.server}/${o.name}`);
}

/** Names items, keeps the unique ones and reports the clashing ones (withheld). */
function assemble(candidates: { exposedName: string; owner: QualifiedName; item: Item }[]): Exposed {
  const byName = new Map<string, typeof candidates>();
  for (const c of candidates) {
    const list = byName.get(c.exposedName);
    if (list) list.push(c);
    else byName.set(c.exposedName, [c]);
  }
  const items: Item[] = [];
  const routes = new Map<string, QualifiedName>();
  const clashes: Clash[] = [];
  for (const [name, list] of byName) {
    if (list.length > 1) {
      clashes.push({ name, owners: describeClash(list.map((c) => c.owner)) });
      continue;
    }
    items.push(list[0].item);
    routes.set(name, list[0].owner);
  }
  return { items, routes, clashes };
}

function exposedName(spec: VirtualServerSpec, server: string, name: string): string {
  return spec.naming === 'prefix' ? mangle(server, name) : name;
}

/** The tools a virtual server serves: filtered, overridden, named, clashes withheld. */
export function exposeTools(spec: VirtualServerSpec, lists: readonly ServerItems[]): Exposed {
  const candidates: { exposedName: string; owner: QualifiedName; item: Item }[] = [];
  for (const source of spec.servers) {
    const list = lists.find((l) => l.server === source.name);
    if (!list) continue;
    for (const tool of list.items) {
      const name = String(tool.name);
      if (!passes(source.tools, name)) continue;
      const override = source.tools?.overrides?.[name];
      const newName = override?.name ?? exposedName(spec, source.name, name);
      const item: Item = { ...tool, name: newName };
      if (override?.description !== undefined) item.description = override.description;
      if (override?.annotations !== undefined) item.annotations = { ...(tool.annotations as Item | undefined), ...override.annotations };
      candidates.push({ exposedName: newName, owner: { server: source.name, name }, item });
    }
  }
  return assemble(candidates);
}

/** The prompts a virtual server serves (no overrides): filtered, named, clashes withheld. */
export function exposePrompts(spec: VirtualServerSpec, lists: readonly ServerItems[]): Exposed {
  const candidates: { exposedName: string; owner: QualifiedName; item: Item }[] = [];
  for (const source of spec.servers) {
    const list = lists.find((l) => l.server === source.name);
    if (!list) continue;
    for (const prompt of list.items) {
      const name = String(prompt.name);
      if (!passes(source.prompts, name)) continue;
      const newName = exposedName(spec, source.name, name);
      candidates.push({ exposedName: newName, owner: { server: source.name, name }, item: { ...prompt, name: newName } });
    }
  }
  return assemble(candidates);
}

/** Whether a virtual server serves a resource URI (or a template) of one of its servers. */
export function servesResource(spec: VirtualServerSpec, server: string, uriOrTemplate: string): boolean {
  const source = spec.servers.find((s) => s.name === server);
  return source !== undefined && passes(source.resources, uriOrTemplate);
}

/** The message of a clash, naming both (all) tools. */
export function clashMessage(virtualServer: string, kind: 'tool' | 'prompt', clash: Clash): string {
  return `virtual server "${virtualServer}": ${kind} name "${clash.name}" is served by ${clash.owners.join(' and ')}; neither is served until one is renamed (tools.overrides) or filtered out, or naming is "prefix"`;
}

/**
 * The full-text index of tool search: names (split at "_", "-", ".", "/" and case
 * changes, so `create_issue` and `createIssue` both match "issue") and descriptions,
 * names weighing double; prefix and slightly fuzzy matches count. Rebuilt only when
 * the tool list changes.
 */
export class ToolIndex {
  private tools: Item[] = [];
  private index?: MiniSearch;

  update(tools: Item[]): void {
    if (this.index && sameTools(this.tools, tools)) return;
    const index = new MiniSearch({
      fields: ['name', 'description'],
      storeFields: [],
      tokenize: (text) => text.split(/[\s_.\-/:,;()]+|(?<=[a-z])(?=[A-Z])/).filter(Boolean),
      processTerm: (term) => term.toLowerCase(),
      searchOptions: { boost: { name: 2 }, prefix: true, fuzzy: 0.2, combineWith: 'OR' },
    });
    index.addAll(tools.map((t, id) => ({ id, name: String(t.name), description: typeof t.description === 'string' ? t.description : '' })));
    this.tools = tools;
    this.index = index;
  }

  /** The best matches, best first; nothing for a query without words. */
  find(query: string, limit: number): Item[] {
    if (!this.index) return [];
    return this.index
      .search(query)
      .slice(0, limit)
      .map((hit) => this.tools[hit.id as number]);
  }
}

function sameTools(a: Item[], b: Item[]): boolean {
  return a.length === b.length && a.every((t, i) => t.name === b[i].name && t.description === b[i].description);
}
