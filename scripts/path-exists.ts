import { access } from 'node:fs/promises';

/** exists reports whether a file or folder is at `path` (the scripts' cache and state checks). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
