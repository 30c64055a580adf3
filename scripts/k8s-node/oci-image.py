#!/usr/bin/env python3
"""One-binary OCI image archive (for `ctr images import`): the node's pause image.

Usage: oci-image.py NAME BINARY OUT.tar
The image holds BINARY as /pause (entrypoint, uid 65535 as the upstream pause image runs),
linux/amd64, one uncompressed layer. The archive is an OCI image layout whose index names
the image (io.containerd.image.name), so the import tags it NAME. Byte-for-byte
reproducible: every timestamp is 0.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile


def blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def tar_bytes(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main() -> None:
    name, binary, out = sys.argv[1:4]
    with open(binary, "rb") as f:
        layer_digest, layer = blob(tar_bytes({"pause": (f.read(), 0o755)}))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_digest, config_raw = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_raw),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_raw = blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_raw),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rpartition(":")[2],
                },
            }
        ],
    }
    files = {"oci-layout": (b'{"imageLayoutVersion":"1.0.0"}', 0o644)}
    for digest, data in ((layer_digest, layer), (config_digest, config_raw),
                         (manifest_digest, manifest_raw)):  # fmt: skip
        files["blobs/sha256/" + digest.removeprefix("sha256:")] = (data, 0o644)
    files["index.json"] = (json.dumps(index, sort_keys=True).encode(), 0o644)
    with open(out, "wb") as f:
        f.write(tar_bytes(files))


if __name__ == "__main__":
    main()
