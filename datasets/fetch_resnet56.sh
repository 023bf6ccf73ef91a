#!/bin/sh
# Fetches the pretrained CIFAR-10 ResNet-56 of github.com/akamaster/pytorch_resnet_cifar10
# (BSD 2-clause) at a fixed commit, checks its hash and converts it to the model
# format (docs/model-format.md) with scripts/export_pytorch.py. When
# ../shared/datasets holds the converted file, it links that instead.
#
#   datasets/fetch_resnet56.sh [DEST_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/resnet-cifar10-weights}
shared=$here/../../shared/datasets/resnet-cifar10-weights

if [ -d "$shared" ] && [ ! -e "$dest" ]; then
  ln -s "$shared" "$dest"
  echo "linked $dest -> $shared"
  exit 0
fi

commit=d5489e8995e81e91ce6b1d69dcc98ad579b0b153
url=https://github.com/akamaster/pytorch_resnet_cifar10/raw/$commit/pretrained_models/resnet56-4bfd9763.th
mkdir -p "$dest"
curl -fL --retry 3 -o "$dest/resnet56-4bfd9763.th" "$url"
sha256sum "$dest/resnet56-4bfd9763.th" | grep -q '^4bfd9763' || { echo "hash mismatch" >&2; exit 1; }
/usr/bin/python3 "$here/../scripts/export_pytorch.py" "$dest/resnet56-4bfd9763.th" "$dest/resnet56.safetensors" \
  --depth 56 --num-classes 10 --shortcut A --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \
  --class-names airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck
