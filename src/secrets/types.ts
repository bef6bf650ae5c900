/**
 * Secrets live in OpenBao KV v2. Values are write-only through mcpd: nothing
 * here returns a value except readPinned, which only the container activity uses
 * at the moment it creates a container.
 */
export interface SecretSummary {
  name: string;
  keys: string[];
  version: number;
  updatedAt: string | null;
}

/** A resolved reference: which version to read, never the value. Safe for Temporal history. */
export interface PinnedSecretRef {
  name: string;
  key: string;
  version: number;
}

export interface SecretStore {
  put(name: string, data: Record<string, string>): Promise<SecretSummary>;
  list(): Promise<SecretSummary[]>;
  describe(name: string): Promise<SecretSummary | null>;
  /** Deletes every version and the metadata; false when there was none. */
  delete(name: string): Promise<boolean>;
  /** Rejects with "secret resolution failed: <reason>" naming secret and key, never a value. */
  pin(ref: { name: string; key: string }): Promise<PinnedSecretRef>;
  readPinned(ref: PinnedSecretRef): Promise<string>;
}
