// Where an uploaded file part's bytes go while it streams in: a SHA-256 and a byte count always;
// the bytes themselves only up to `keepFileBytes`. Parts above 1 MiB spill to a temporary file
// rather than memory, so that even a part that turns out too large to keep (and is then thrown
// away) never costs the process more than ~1 MiB of resident memory.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const MEMORY_LIMIT = 1024 * 1024;
const HEAD_BYTES = 64 * 1024;

/** A lazily created temporary folder for spilled parts, removed by remove(). */
export class SpillDir {
  private dir: Promise<string> | undefined;
  private counter = 0;
  private removed = false;

  async file(): Promise<string> {
    if (this.removed) throw new Error('the emulator is closed');
    this.dir ??= mkdtemp(join(tmpdir(), 'telepi-emulator-'));
    return join(await this.dir, `part-${++this.counter}`);
  }

  async remove(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    this.removed = true;
    if (!dir) return;
    await rm(await dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export interface SinkResult {
  size: number;
  sha256: string;
  /** The whole content, when it was at most keepFileBytes. */
  bytes?: Buffer;
  /** The first bytes (up to 64 KiB), for sniffing image dimensions. */
  head: Buffer;
}

export class FileSink {
  private size = 0;
  private readonly hash: Hash = createHash('sha256');
  private chunks: Buffer[] = [];
  private memory = 0;
  private readonly headChunks: Buffer[] = [];
  private headSize = 0;
  private mode: 'memory' | 'spill' | 'discard' = 'memory';
  private spillPath: string | undefined;
  private stream: WriteStream | undefined;

  constructor(
    private readonly keep: number,
    private readonly spillDir: SpillDir,
  ) {}

  async write(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.hash.update(data);
    this.size += data.length;
    if (this.headSize < HEAD_BYTES) {
      const piece = Buffer.from(data.subarray(0, HEAD_BYTES - this.headSize));
      this.headChunks.push(piece);
      this.headSize += piece.length;
    }
    if (this.mode === 'discard') return;
    if (this.size > this.keep) {
      await this.discard();
      return;
    }
    if (this.mode === 'memory') {
      this.chunks.push(Buffer.from(data));
      this.memory += data.length;
      if (this.memory > Math.min(MEMORY_LIMIT, this.keep)) await this.startSpill();
      return;
    }
    const stream = this.stream;
    if (stream && !stream.write(data)) {
      try {
        await once(stream, 'drain');
      } catch {
        await this.discard();
      }
    }
  }

  private async startSpill(): Promise<void> {
    try {
      this.spillPath = await this.spillDir.file();
      const stream = createWriteStream(this.spillPath);
      this.stream = stream;
      this.mode = 'spill';
      stream.on('error', () => { this.mode = 'discard'; });
      const pending = Buffer.concat(this.chunks);
      this.chunks = [];
      this.memory = 0;
      if (!stream.write(pending)) await once(stream, 'drain');
    } catch {
      await this.discard();
    }
  }

  /** Stops keeping the bytes (too large, or the spill file failed); hashing goes on. */
  async discard(): Promise<void> {
    this.mode = 'discard';
    this.chunks = [];
    this.memory = 0;
    await this.cleanUp();
  }

  private async cleanUp(): Promise<void> {
    const stream = this.stream;
    const path = this.spillPath;
    this.stream = undefined;
    this.spillPath = undefined;
    if (stream && !stream.closed) {
      stream.destroy();
      await once(stream, 'close').catch(() => undefined);
    }
    if (path) await unlink(path).catch(() => undefined);
  }

  async finish(): Promise<SinkResult> {
    let bytes: Buffer | undefined;
    if (this.mode === 'memory') {
      bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    } else if (this.mode === 'spill' && this.stream && this.spillPath) {
      try {
        const closed = once(this.stream, 'close');
        this.stream.end();
        await closed;
        if (this.mode === 'spill') bytes = await readFile(this.spillPath);
      } catch {
        bytes = undefined;
      }
    }
    await this.cleanUp();
    this.chunks = [];
    return { size: this.size, sha256: this.hash.digest('hex'), bytes, head: Buffer.concat(this.headChunks) };
  }
}
