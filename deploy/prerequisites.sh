#!/usr/bin/env bash
# Installs what building yrd needs and a fresh machine may lack: libclang (for the bindings of
# the rocksdb crate) and the rustfmt and clippy components.
set -euo pipefail

# libclang itself (`libclang.so`, `libclang-14.so.1`, ...), not `libclang-cpp`, which some
# machines have without it and which bindgen cannot use.
have_libclang() {
    ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so' \
        || compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null \
        || compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null
}

if ! have_libclang; then
    echo "installing libclang (needed to build rocksdb)" >&2
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libclang-dev >/dev/null
fi

for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
    fi
done
