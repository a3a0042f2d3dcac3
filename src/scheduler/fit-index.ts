/**
 * An ordered index of nodes for the scheduler's decisions in O(log n).
 *
 * Entries are ordered by `(key, ordinal)`; each carries the node's free memory (`N_lim − N_alloc`,
 * node-wide), and every subtree knows the largest free memory below it. That augmentation lets one
 * descent answer "the first entry at or after this key on which a task of `need` bytes fits"
 * without visiting the nodes where it does not fit. The tree is an AVL tree, so its height, and so
 * every operation, is O(log n) in the worst case, not only on average.
 *
 * Keys are numbers compared exactly (the scheduler uses whole bytes, far below 2^53); ordinals are
 * distinct per node and break ties, so two entries never compare equal.
 */

/** One entry as the queries return it. */
export interface FitEntry {
  readonly key: number;
  readonly ordinal: number;
  readonly free: number;
}

interface TreeNode {
  key: number;
  ordinal: number;
  free: number;
  /** The largest `free` in this subtree. */
  maxFree: number;
  height: number;
  left: TreeNode | null;
  right: TreeNode | null;
}

function compare(aKey: number, aOrd: number, bKey: number, bOrd: number): number {
  if (aKey < bKey) return -1;
  if (aKey > bKey) return 1;
  return aOrd < bOrd ? -1 : aOrd > bOrd ? 1 : 0;
}

const height = (n: TreeNode | null): number => (n === null ? 0 : n.height);

function update(n: TreeNode): void {
  const l = n.left;
  const r = n.right;
  n.height = 1 + Math.max(height(l), height(r));
  let m = n.free;
  if (l !== null && l.maxFree > m) m = l.maxFree;
  if (r !== null && r.maxFree > m) m = r.maxFree;
  n.maxFree = m;
}

function rotateRight(n: TreeNode): TreeNode {
  const l = n.left;
  if (l === null) return n;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft(n: TreeNode): TreeNode {
  const r = n.right;
  if (r === null) return n;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

function rebalance(n: TreeNode): TreeNode {
  update(n);
  const balance = height(n.left) - height(n.right);
  if (balance > 1) {
    const l = n.left;
    if (l !== null && height(l.left) < height(l.right)) n.left = rotateLeft(l);
    return rotateRight(n);
  }
  if (balance < -1) {
    const r = n.right;
    if (r !== null && height(r.right) < height(r.left)) n.right = rotateRight(r);
    return rotateLeft(n);
  }
  return n;
}

/** Leftmost entry of the subtree with free ≥ need, or null. */
function firstAny(start: TreeNode | null, need: number): TreeNode | null {
  let n = start;
  if (n === null || n.maxFree < need) return null;
  for (;;) {
    if (n.left !== null && n.left.maxFree >= need) n = n.left;
    else if (n.free >= need) return n;
    else if (n.right !== null) n = n.right;
    else return null; // unreachable while maxFree is kept right
  }
}

/** Rightmost entry of the subtree with free ≥ need, or null. */
function lastAny(start: TreeNode | null, need: number): TreeNode | null {
  let n = start;
  if (n === null || n.maxFree < need) return null;
  for (;;) {
    if (n.right !== null && n.right.maxFree >= need) n = n.right;
    else if (n.free >= need) return n;
    else if (n.left !== null) n = n.left;
    else return null;
  }
}

/**
 * Leftmost entry with (key, ordinal) ≥ (k, o) and free ≥ need. Along the search path for the bound
 * each node costs O(1); only one `firstAny` call can succeed, and a failing one stops at its root
 * (its maxFree says so), so the whole query is O(log n).
 */
function firstFrom(n: TreeNode | null, k: number, o: number, need: number): TreeNode | null {
  if (n === null || n.maxFree < need) return null;
  if (compare(n.key, n.ordinal, k, o) < 0) return firstFrom(n.right, k, o, need);
  const inLeft = firstFrom(n.left, k, o, need);
  if (inLeft !== null) return inLeft;
  if (n.free >= need) return n;
  return firstAny(n.right, need);
}

/** Rightmost entry with (key, ordinal) ≤ (k, o) and free ≥ need; the mirror of {@link firstFrom}. */
function lastUpTo(n: TreeNode | null, k: number, o: number, need: number): TreeNode | null {
  if (n === null || n.maxFree < need) return null;
  if (compare(n.key, n.ordinal, k, o) > 0) return lastUpTo(n.left, k, o, need);
  const inRight = lastUpTo(n.right, k, o, need);
  if (inRight !== null) return inRight;
  if (n.free >= need) return n;
  return lastAny(n.left, need);
}

function insertNode(n: TreeNode | null, key: number, ordinal: number, free: number): TreeNode {
  if (n === null) return { key, ordinal, free, maxFree: free, height: 1, left: null, right: null };
  const c = compare(key, ordinal, n.key, n.ordinal);
  if (c === 0) throw new Error(`FitIndex.insert: entry (${key}, ${ordinal}) is already present`);
  if (c < 0) n.left = insertNode(n.left, key, ordinal, free);
  else n.right = insertNode(n.right, key, ordinal, free);
  return rebalance(n);
}

/** The subtree without its leftmost entry, which is put in `out[0]`. */
function takeMin(n: TreeNode, out: TreeNode[]): TreeNode | null {
  if (n.left === null) {
    out[0] = n;
    return n.right;
  }
  n.left = takeMin(n.left, out);
  return rebalance(n);
}

function removeNode(n: TreeNode | null, key: number, ordinal: number, result: { found: boolean }): TreeNode | null {
  if (n === null) return null;
  const c = compare(key, ordinal, n.key, n.ordinal);
  if (c < 0) n.left = removeNode(n.left, key, ordinal, result);
  else if (c > 0) n.right = removeNode(n.right, key, ordinal, result);
  else {
    result.found = true;
    if (n.left === null) return n.right;
    if (n.right === null) return n.left;
    const out: TreeNode[] = [];
    const rest = takeMin(n.right, out);
    const min = out[0];
    if (min === undefined) return n; // unreachable: a non-empty subtree has a leftmost entry
    min.left = n.left;
    min.right = rest;
    return rebalance(min);
  }
  return rebalance(n);
}

const view = (n: TreeNode | null): FitEntry | undefined => (n === null ? undefined : { key: n.key, ordinal: n.ordinal, free: n.free });

export class FitIndex {
  private root: TreeNode | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The tree's height (for tests of the balance bound). */
  get height(): number {
    return height(this.root);
  }

  /** Adds an entry; throws when (key, ordinal) is already present, which would be a caller's bug. */
  insert(key: number, ordinal: number, free: number): void {
    this.root = insertNode(this.root, key, ordinal, free);
    this.count++;
  }

  /** Removes an entry; returns false when it was not there. */
  remove(key: number, ordinal: number): boolean {
    const found = { found: false };
    this.root = removeNode(this.root, key, ordinal, found);
    if (found.found) this.count--;
    return found.found;
  }

  /** Changes an entry's free memory in place (its position does not depend on it); false when absent. */
  setFree(key: number, ordinal: number, free: number): boolean {
    const path: TreeNode[] = [];
    let n = this.root;
    while (n !== null) {
      path.push(n);
      const c = compare(key, ordinal, n.key, n.ordinal);
      if (c === 0) break;
      n = c < 0 ? n.left : n.right;
    }
    if (n === null) return false;
    n.free = free;
    for (let i = path.length - 1; i >= 0; i--) {
      const p = path[i];
      if (p !== undefined) update(p);
    }
    return true;
  }

  /** The leftmost entry with (key, ordinal) ≥ (k, o) whose free memory is at least `need`. */
  firstFitFrom(k: number, o: number, need: number): FitEntry | undefined {
    return view(firstFrom(this.root, k, o, need));
  }

  /** The rightmost entry with (key, ordinal) ≤ (k, o) whose free memory is at least `need`. */
  lastFitUpTo(k: number, o: number, need: number): FitEntry | undefined {
    return view(lastUpTo(this.root, k, o, need));
  }

  /** Every entry in order (O(n); for tests and snapshots). */
  entries(): FitEntry[] {
    const out: FitEntry[] = [];
    const walk = (n: TreeNode | null): void => {
      if (n === null) return;
      walk(n.left);
      out.push({ key: n.key, ordinal: n.ordinal, free: n.free });
      walk(n.right);
    };
    walk(this.root);
    return out;
  }
}
