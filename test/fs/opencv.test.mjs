// OpenCV's own AVI writer (std::ofstream over fopen, header patched with seekp at the end) under the
// shim, grey and colour MJPEG.  The written-back file must be byte-identical to the one the same
// program writes on plain disk.  Regression: the grey encoder of OpenCV 4.6 reads two Huffman table
// slots it never wrote (uninitialised stack); what the shim's managed fopen left on the stack made
// it fail `len >= 0 && len < 32` in put_bits, where disk and tmpfs passed (see ARCHITECTURE.md, stdio).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, assertServedFromMemory, cleanEnv, describe, ephemeraRun, requireBuilt, run, scratch, sha256 } from './lib/harness.mjs';

const SCRIPT = `
import sys, cv2, numpy as np
out, color = sys.argv[1], sys.argv[2] == "color"
w = cv2.VideoWriter(out, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240), color)
assert w.isOpened(), "VideoWriter did not open " + out
for i in range(30):
    f = np.full((240, 320, 3) if color else (240, 320), (i * 21) % 256, np.uint8)
    f[i * 8:(i + 1) * 8, :] = 255 - (i * 21) % 256
    w.write(f)
w.release()
# read it back through OpenCV's own AVI reader (std::ifstream): frame count and sizes
cap = cv2.VideoCapture(out, cv2.CAP_OPENCV_MJPEG)
assert cap.isOpened(), "VideoCapture did not open " + out
n = 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    assert frame.shape[:2] == (240, 320), frame.shape
    n += 1
assert n == 30, "read back %d frames, wrote 30" % n
print("wrote and read back", n, "frames")
`;

for (const mode of ['gray', 'color']) {
  test(`python cv2.VideoWriter MJPEG AVI (${mode}) in memory equals the disk result`, async (t) => {
    requireBuilt(PYTHON);
    const probe = await run(PYTHON, ['-c', 'import cv2, numpy'], { env: cleanEnv() });
    assert.equal(probe.status, 0, `python3-opencv is needed (scripts/deps.sh installs it): ${describe(probe)}`);
    const sc = scratch(`opencv-${mode}`);
    const root = sc.sub('root');
    const disk = sc.sub('disk');
    const ref = await run(PYTHON, ['-c', SCRIPT, join(disk, 'v.avi'), mode], { env: cleanEnv(), cwd: disk });
    assert.equal(ref.status, 0, `reference run on disk: ${describe(ref)}`);
    const r = await ephemeraRun({ root, cmd: PYTHON, args: ['-c', SCRIPT, join(root, 'v.avi'), mode], statsDir: sc.dir });
    assert.equal(r.status, 0, `cv2.VideoWriter (${mode}) under the shim: ${describe(r)}\n(scratch kept in ${sc.dir})`);
    assertServedFromMemory(r.stats, `cv2.VideoWriter ${mode}`);
    t.diagnostic(`fast_writes=${r.stats.fast_writes} files_in_memory_peak=${r.stats.files_in_memory_peak}`);
    const want = readFileSync(join(disk, 'v.avi'));
    const got = readFileSync(join(root, 'v.avi'));
    assert.equal(got.length, want.length, `AVI size under the shim ${got.length}, on disk ${want.length}`);
    assert.equal(sha256(got), sha256(want), 'AVI written under the shim differs from the disk result');
    sc.done();
  });
}
