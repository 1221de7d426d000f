// Where files live on disk: every user's files under <storage root>/<user>/, `localPath` relative to
// that. As in BITS, a download is written to a temporary file in the destination directory and
// becomes visible under its final name only when the job is completed (an atomic rename in the same
// directory, hence the same file system).
import fs from "node:fs/promises";
import path from "node:path";
import { DomainError } from "../domain/errors.js";

export interface StoredFile {
  id: string;
  localPath: string; // relative to the user's directory, validated (no "..", not absolute)
  transferred: boolean;
}

export class FileStorage {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** <root>/<user>: user names are validated to be single safe path segments (src/auth/policy.ts). */
  userRoot(owner: string): string {
    const dir = path.resolve(this.root, owner);
    if (path.dirname(dir) !== this.root) throw new Error(`not a valid owner directory: ${owner}`);
    return dir;
  }

  finalPath(owner: string, localPath: string): string {
    const base = this.userRoot(owner);
    const p = path.resolve(base, localPath);
    // validateLocalPath already refuses "..", this is the belt to those braces.
    if (!p.startsWith(base + path.sep)) throw new Error(`path escapes the user's directory: ${localPath}`);
    return p;
  }

  /** The temporary file for a download: hidden, next to its destination, named by the file's id. */
  tempPath(owner: string, f: Pick<StoredFile, "id" | "localPath">): string {
    const final = this.finalPath(owner, f.localPath);
    return path.join(path.dirname(final), `.${path.basename(final)}.${f.id}.haul-part`);
  }

  /**
   * Refuses a destination that would leave the user's directory through an existing symbolic link:
   * no component below <root>/<user> may be a symlink (checked when files are added and again
   * before a transfer writes).
   */
  async assertNoSymlink(owner: string, localPath: string): Promise<void> {
    const base = this.userRoot(owner);
    let cur = base;
    for (const seg of localPath.split("/")) {
      cur = path.join(cur, seg);
      let st;
      try {
        st = await fs.lstat(cur);
      } catch {
        return; // does not exist yet: nothing below can be a link either
      }
      if (st.isSymbolicLink()) {
        throw new DomainError("BAD_USER_INPUT", `localPath ${JSON.stringify(localPath)} goes through a symbolic link; choose another destination`);
      }
      if (!st.isDirectory()) return;
    }
  }

  /**
   * Creates the destination's directories one level at a time, refusing any component that is (or
   * turns into) a symbolic link: a recursive mkdir would follow a link planted by someone else.
   */
  async ensureDir(owner: string, localPath: string): Promise<void> {
    let cur = this.userRoot(owner);
    await fs.mkdir(cur, { recursive: true });
    const segments = localPath.split("/").slice(0, -1);
    for (const seg of segments) {
      cur = path.join(cur, seg);
      try {
        await fs.mkdir(cur);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const st = await fs.lstat(cur);
      if (st.isSymbolicLink() || !st.isDirectory()) {
        throw Object.assign(new Error(`${seg} in ${localPath} is not a plain directory (a symbolic link?)`), { code: "ELOOP" });
      }
    }
  }

  /**
   * completeJob: renames every transferred file's temporary file to its final path and deletes the
   * temporary files of the others (BITS partial complete). Returns the ids renamed and the failures.
   */
  async commit(owner: string, files: readonly StoredFile[]): Promise<{ renamed: string[]; failed: { id: string; error: string }[] }> {
    const renamed: string[] = [];
    const failed: { id: string; error: string }[] = [];
    for (const f of files) {
      const temp = this.tempPath(owner, f);
      if (!f.transferred) {
        await fs.rm(temp, { force: true }).catch(() => {});
        continue;
      }
      try {
        const final = this.finalPath(owner, f.localPath);
        await this.ensureDir(owner, f.localPath);
        await this.assertNoSymlink(owner, f.localPath);
        // Only a regular file we wrote is moved into place, never a link planted at its name.
        const st = await fs.lstat(temp);
        if (!st.isFile()) throw new Error(`the temporary file of ${f.localPath} is not a regular file`);
        await fs.rename(temp, final);
        renamed.push(f.id);
      } catch (err) {
        failed.push({ id: f.id, error: (err as Error).message });
      }
    }
    return { renamed, failed };
  }

  /** cancelJob: deletes the temporary files; returns how many could not be deleted. */
  async deleteTemps(owner: string, files: readonly Pick<StoredFile, "id" | "localPath">[]): Promise<number> {
    let failures = 0;
    for (const f of files) {
      try {
        await fs.rm(this.tempPath(owner, f), { force: true });
      } catch {
        failures++;
      }
    }
    return failures;
  }

  /** takeOwnership: moves temporary files to the new owner's directory (best effort; a file not moved is fetched again). */
  async moveTemps(from: string, to: string, files: readonly Pick<StoredFile, "id" | "localPath">[]): Promise<void> {
    for (const f of files) {
      const src = this.tempPath(from, f);
      const dst = this.tempPath(to, f);
      try {
        await fs.mkdir(path.dirname(dst), { recursive: true });
        await fs.rename(src, dst);
      } catch {
        await fs.rm(src, { force: true }).catch(() => {});
      }
    }
  }
}
