# The privilege step of the README's two set-up commands (tools/demo.sh, tests/run.sh), sourced as their
# first line, before they cd or read any argument:
#
#     source "$(dirname "$0")/../tools/require-root.sh" "$@"
#
# Both need root (apt-get, FUSE mounts, mknod). As root this returns. As another user it re-executes the
# script through sudo with the same arguments, keeping CI, LAZYFS and LAZYFS_* and the proxy variables
# (sudo's env_reset drops them otherwise); without sudo (a minimal Debian host, where one is root anyway)
# it says to run the script as root and exits 1.
#
# LAZYFS_PRIVILEGE_CHECK_ONLY=1 exits 0 right after the check, as root: tests/integration/
# test_setup_commands.py runs the scripts' privilege step that way, without their apt-get and build.

if ((EUID != 0)); then
  if ! command -v sudo >/dev/null; then
    echo "${0##*/}: needs root (apt-get, FUSE mounts) and there is no sudo to get it; run it as root: $0" >&2
    exit 1
  fi
  require_root_keep=()
  for require_root_name in $(compgen -e); do
    case $require_root_name in
      CI | LAZYFS | LAZYFS_* | http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY)
        require_root_keep+=("$require_root_name") ;;
    esac
  done
  require_root_script=$(cd "$(dirname "$0")" && pwd)/${0##*/}  # absolute: sudoers may set another runcwd
  echo "${0##*/}: needs root; re-running through sudo" >&2
  exec sudo ${require_root_keep[0]+"--preserve-env=$(IFS=,; echo "${require_root_keep[*]}")"} -- \
    "$BASH" "$require_root_script" "$@"
fi
if [[ ${LAZYFS_PRIVILEGE_CHECK_ONLY:-} == 1 ]]; then
  echo "${0##*/}: running as root; stopping after the privilege check (LAZYFS_PRIVILEGE_CHECK_ONLY=1)" >&2
  exit 0
fi
