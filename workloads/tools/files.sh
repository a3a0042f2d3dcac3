# Sourced by toolbench.sh and toolcounts.sh: the small files their workloads archive, add and copy.
# Small text files in directories of 50: what a source tree or an archive holds.
make_files() { # DIR COUNT
  local d=$1 count=$2 i sub
  for ((i = 0; i < count; i++)); do
    sub=$d/d$((i / 50))
    [ -d "$sub" ] || mkdir -p "$sub"
    printf 'file %d\n%s\n' "$i" "$(printf 'line %d of some scratch content\n' {1..40})" > "$sub/f$i.txt"
  done
}
