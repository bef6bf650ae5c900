/** A spec file or a KEY=VALUE argument that cannot be read; its message says where and why. */
export class DocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentError';
  }
}
