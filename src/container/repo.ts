/**
 * Where the repository's own files are, seen from the compiled module: this file runs from
 * build/js/container/, so the checkout is three levels up.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository checkout, with a trailing slash. */
export const REPO_DIR = fileURLToPath(new URL('../../../', import.meta.url));
