"""shutil copy/copy2/copyfile (sendfile inside), copytree, move, rmtree, archives."""
import filecmp
import os
import shutil
import sys

from common import check, report, rng, sha

root, outside = sys.argv[1], sys.argv[2]
j = lambda *p: os.path.join(root, *p)  # noqa: E731
r = rng(4)
files = {}
for rel in ["src/a.bin", "src/b.txt", "src/sub/c.bin", "src/sub/deep/d.bin", "src/empty"]:
    os.makedirs(os.path.dirname(j(rel)), exist_ok=True)
    data = b"" if rel.endswith("empty") else r.randbytes(r.randint(1, 400000))
    with open(j(rel), "wb") as f:
        f.write(data)
    files[rel] = data
os.chmod(j("src/a.bin"), 0o751)
os.utime(j("src/a.bin"), ns=(1_500_000_000_000_000_000, 1_600_000_000_000_000_000))

shutil.copy(j("src/a.bin"), j("copy.bin"))
check(open(j("copy.bin"), "rb").read() == files["src/a.bin"], "shutil.copy content")
check(os.stat(j("copy.bin")).st_mode & 0o777 == 0o751, "shutil.copy mode")
shutil.copy2(j("src/a.bin"), j("copy2.bin"))
check(os.stat(j("copy2.bin")).st_mtime_ns == 1_600_000_000_000_000_000, "copy2 keeps mtime")
shutil.copyfile(j("src/sub/c.bin"), j("copyfile.bin"))
check(filecmp.cmp(j("src/sub/c.bin"), j("copyfile.bin"), shallow=False), "copyfile content")
with open(j("src/b.txt"), "rb") as fi, open(j("copyobj.bin"), "wb") as fo:
    shutil.copyfileobj(fi, fo, 4096)
check(open(j("copyobj.bin"), "rb").read() == files["src/b.txt"], "copyfileobj")

shutil.copytree(j("src"), j("tree"))
for rel, data in files.items():
    t = j("tree", rel[len("src/"):])
    check(open(t, "rb").read() == data, f"copytree {rel}")

shutil.move(j("tree"), j("moved"))  # rename inside the root
check(not os.path.exists(j("tree")) and os.path.isdir(j("moved", "sub", "deep")), "move within the root")
shutil.move(j("moved", "sub"), os.path.join(outside, "sub"))  # copy to another file system path, then delete
check(open(os.path.join(outside, "sub", "c.bin"), "rb").read() == files["src/sub/c.bin"], "move out of the root")
check(not os.path.exists(j("moved", "sub")), "moved-out source still there")
shutil.move(os.path.join(outside, "sub"), j("back"))  # and back in
check(open(j("back", "deep", "d.bin"), "rb").read() == files["src/sub/deep/d.bin"], "move into the root")

arch = shutil.make_archive(j("arch"), "gztar", root_dir=j("src"))
shutil.unpack_archive(arch, j("unpacked"))
for rel, data in files.items():
    check(open(j("unpacked", rel[len("src/"):]), "rb").read() == data, f"archive round trip {rel}")

shutil.rmtree(j("moved"))
shutil.rmtree(j("unpacked"))
check(sorted(os.listdir(root)) == ["arch.tar.gz", "back", "copy.bin", "copy2.bin", "copyfile.bin", "copyobj.bin", "src"],
      f"root after rmtree: {sorted(os.listdir(root))}")
report({rel: sha(d) for rel, d in files.items()})
