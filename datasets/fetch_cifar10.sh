#!/bin/sh
# Fetches the official CIFAR-10 binary release into datasets/cifar-10-batches-bin
# (or DEST) and checks it. When ../shared/datasets exists beside the checkout, it
# links that copy instead (all 50,000 training images and the first 1,000 test
# images, lossless; see its SOURCES.md).
#
#   datasets/fetch_cifar10.sh [DEST]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/cifar-10-batches-bin}
shared=$here/../../shared/datasets/cifar-10-batches-bin

if [ -d "$shared" ] && [ ! -e "$dest" ]; then
  ln -s "$shared" "$dest"
  echo "linked $dest -> $shared"
  exit 0
fi

url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
tarball_md5=c32a1d4ab5d03f1284b67883e8d87530
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "downloading $url"
curl -fL --retry 3 -o "$tmp/cifar.tar.gz" "$url"
echo "$tarball_md5  $tmp/cifar.tar.gz" | md5sum -c -
tar -xzf "$tmp/cifar.tar.gz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp"/cifar-10-batches-bin/*.bin "$tmp"/cifar-10-batches-bin/batches.meta.txt "$dest"/
# Checksums of two files, as listed in ../shared/datasets/SOURCES.md.
( cd "$dest" && md5sum -c - <<SUMS
53f37980c15c3d472c316c40844f3f0d  data_batch_5.bin
803d5f7f4d78ea53de84dbe85f74fb6d  test_batch.bin
SUMS
)
for f in "$dest"/*.bin; do
  size=$(wc -c < "$f")
  [ "$size" -eq 30730000 ] || { echo "unexpected size $size: $f" >&2; exit 1; }
done
echo "CIFAR-10 in $dest"
