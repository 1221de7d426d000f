// Where files live on disk. As in BITS, a download is written to a temporary file in the destination
// directory and becomes visible under its final name only when the job is completed (an atomic
// rename in the same directory, hence the same file system).
import fs from "node:fs/promises";
import path from "node:path";

export interface StoredFile {
  id: string;
  localPath: string; // relative to the storage root, validated (no "..", not absolute)
  transferred: boolean;
}

export class FileStorage {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  finalPath(f: Pick<StoredFile, "localPath">): string {
    const p = path.resolve(this.root, f.localPath);
    // validateLocalPath already refuses "..", this is the belt to those braces.
    if (p !== this.root && !p.startsWith(this.root + path.sep)) throw new Error(`path escapes the storage root: ${f.localPath}`);
    return p;
  }

  /** The temporary file for a download: hidden, next to its destination, named by the file's id. */
  tempPath(f: Pick<StoredFile, "id" | "localPath">): string {
    const final = this.finalPath(f);
    return path.join(path.dirname(final), `.${path.basename(final)}.${f.id}.haul-part`);
  }

  /**
   * completeJob: renames every transferred file's temporary file to its final path and deletes the
   * temporary files of the others (BITS partial complete). Returns the ids renamed and the failures.
   */
  async commit(files: readonly StoredFile[]): Promise<{ renamed: string[]; failed: { id: string; error: string }[] }> {
    const renamed: string[] = [];
    const failed: { id: string; error: string }[] = [];
    for (const f of files) {
      const temp = this.tempPath(f);
      if (!f.transferred) {
        await fs.rm(temp, { force: true }).catch(() => {});
        continue;
      }
      try {
        await fs.mkdir(path.dirname(this.finalPath(f)), { recursive: true });
        await fs.rename(temp, this.finalPath(f));
        renamed.push(f.id);
      } catch (err) {
        failed.push({ id: f.id, error: (err as Error).message });
      }
    }
    return { renamed, failed };
  }

  /** cancelJob: deletes the temporary files; returns how many could not be deleted. */
  async deleteTemps(files: readonly StoredFile[]): Promise<number> {
    let failures = 0;
    for (const f of files) {
      try {
        await fs.rm(this.tempPath(f), { force: true });
      } catch {
        failures++;
      }
    }
    return failures;
  }
}
