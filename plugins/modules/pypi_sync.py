#!/usr/bin/python
# Copyright: localpypi.mirror contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: pypi_sync
short_description: Mirror selected projects of a Python package index into a static tree
version_added: 0.1.0
description:
  - Reads an upstream simple index (PEP 691 JSON, or PEP 503 HTML), selects files by requirement specifiers,
    target Pythons and platforms, downloads them concurrently with sha256 verification, and publishes
    C(<directory>/web/simple) and C(<directory>/web/packages) atomically in bandersnatch's layout.
  - The options are the keys of the C(localpypi-sync) configuration file; the module and the command share one
    engine and one schema.
  - Runs on the target with the interpreter that has the engine's requirements (the sync role's venv).
author:
  - localpypi.mirror contributors (!UNKNOWN)
requirements:
  - packaging
  - urllib3
  - resolvelib
attributes:
  check_mode:
    support: full
    description: Reads the upstream and reports what would be downloaded or removed; writes nothing.
  diff_mode:
    support: full
    description: Shows the files that would be added (+) and removed (-).
options:
  upstream:
    description:
    - 'PEP 691/503 simple index to mirror from. Default: the public index as pip knows it.'
    - An index that wants a login takes it as pip does, in the URL (C(https://user:token@host/simple/), special
      characters percent-encoded). It is sent to that host only, is never logged, and is masked in this module's
      output.
    - Or another mirror's tree on this machine's disk, carried from a connected site (this engine's or
      bandersnatch's), as the file URL of its C(simple/) directory (C(file:///media/disk/pypi/web/simple/)). Its
      files are read from the directory above C(simple/) only, and verified as any download is.
    type: str
  directory:
    description:
    - Mirror root. C(web/) under it is what a web server serves; C(state/) holds the engine's bookkeeping.
    type: path
    required: true
  projects:
    description:
    - PEP 508 requirement strings (C(requests>=2.31), C(numpy)); C(*) mirrors every project.
    type: list
    default: []
    elements: str
  requirements_files:
    description:
    - pip requirements files whose requirements are mirrored like O(projects) - C(-r) nesting, comments, markers,
      extras and C(-c) constraints, as pip reads them. Relative paths are read from the config file's directory
      (the current directory for the module).
    - A requirement or constraint applies on the targets its marker holds on, as pip applies it there - a pin
      that a universal resolution forks by Python takes each release's files for its own Pythons only. With
      no O(python_versions), a constraint's marker cannot be told, and it restricts nothing.
    - A file named C(pylock.toml) or C(pylock.<name>.toml) is read as a PEP 751 lock file (C(pip lock),
      C(uv pip compile --format pylock.toml)) - each package it installs from an index, at its locked version,
      with its marker. A marker that asks for an extra or a dependency group is dropped, since the mirror
      serves them all. The lock's C(requires-python) and C(environments) join each marker, and a target
      outside them is named in a warning, as a client there refuses the lock.
    - Hashes the files pin (C(--hash=sha256:...), a lock's file hashes) are held against the index's. A file
      whose hash differs, which a client installing with those hashes would refuse, is named in a warning;
      for C(--hash), which names no file, when no file the mirror takes of the release has a listed hash.
    - Editable, URL and local-path requirements are refused with the file and line.
    type: list
    default: []
    elements: str
  dependencies:
    description:
    - Also mirror what the requested projects need, following C(Requires-Dist) transitively for every target in
      O(python_versions) x O(platforms) (both required then, unless O(targets) names every pair) and O(targets),
      honouring environment markers, extras and C(Requires-Python).
    - Dependencies are read from PEP 658 metadata files, else from the wheel, else from an sdist's static
      PKG-INFO; nothing is ever built. Each page and metadata file is read once for all targets.
    type: bool
    default: false
  extras:
    description:
    - Extras to follow for every requested project, besides those its requirement names.
    type: list
    default: []
    elements: str
  resolution:
    description:
    - With O(dependencies), C(candidates) keeps every release a resolution could pick within the specifiers and
      O(latest); C(pinned) keeps only the releases the resolver (resolvelib, as in pip) picks for each target.
    type: str
    default: candidates
    choices: [candidates, pinned]
  exclude:
    description:
    - Project names or globs never mirrored.
    type: list
    default: []
    elements: str
  private_directory:
    description:
    - Package directory of a private index beside the mirror (pypiserver's). Every project with a file there is
      claimed, never read from the upstream, never resolved there, and a page already mirrored for it is withdrawn,
      so an upstream project of the same name never reaches clients. The run stops, syncing nothing, when the
      directory cannot be listed.
    type: path
  private_projects:
    description:
    - Project names or globs claimed like those in I(private_directory), before anything is uploaded (C(acme-*)
      reserves a prefix).
    type: list
    default: []
    elements: str
  python_versions:
    description:
    - 'Target Python versions (C(3.11)), quoted in YAML; a free-threaded CPython is a target of its own (C(3.14t)),
      whose wheels carry the C(cp314t) ABI. Files that cannot install on any of them are skipped. Empty: all.'
    type: list
    default: []
    elements: str
  platforms:
    description:
    - 'Target platform tags (C(manylinux_2_28_x86_64), C(win_amd64), C(macosx_11_0_arm64), C(ios_13_0_arm64_iphoneos),
      C(android_24_arm64_v8a), C(pyemscripten_2026_0_wasm32)); compatible older tags are kept too, pure wheels always.
      Empty: all.'
    type: list
    default: []
    elements: str
  targets:
    description:
    - 'Python/platform pairs served besides the product of O(python_versions) and O(platforms), or, with both empty,
      instead of it: C(3.12/manylinux_2_28_x86_64), C(3.13/win_amd64), C(3.14/pyemscripten_2026_0_wasm32).'
    - A fleet whose servers run one Python and whose desktops another gets each the wheels it installs, and not
      every Python's for every platform; with O(dependencies), each pair is resolved for, and only those.
    type: list
    default: []
    elements: str
  package_types:
    description:
    - Distribution types to mirror.
    type: list
    default:
    - sdist
    - wheel
    elements: str
    choices:
    - sdist
    - wheel
  prereleases:
    description:
    - Mirror pre-releases too.
    type: bool
    default: false
  latest:
    description:
    - Keep the newest N matching releases of each project on each target Python and platform, as pip there
      would choose (a yanked release takes no place); 0 keeps all. With dependencies, the older releases pip
      backtracks to are kept too.
    type: int
    default: 0
  include_yanked:
    description:
    - Mirror yanked files (keeping their yank marker).
    type: bool
    default: true
  exclude_newer:
    description:
    - 'Leave out files uploaded after this moment: a date (C(2026-06-01), midnight UTC), a time
      (C(2026-06-01T12:00:00Z)), or an age (C(7d), C(36h), or as uv writes one, C(7 days) or C(P7D)). An age
      is a cooldown: a release is mirrored only once it is that old, when the index has had time to quarantine a
      malicious one. As with uv''s C(--exclude-newer),
      files without an upload time (PEP 700; an index with HTML pages only gives none) are left out too, and a
      resolution sees only the releases left. Empty: no limit.'
    type: str
  exclude_newer_except:
    description:
    - 'Project names or globs that I(exclude_newer) does not hold back: a security release wanted before the
      cooldown ends. Their files of any age are mirrored, and a resolution sees them all.'
    type: list
    elements: str
    default: []
  weak_hashes:
    description:
    - 'Also mirror files whose index gives only an md5, sha1 or sha224 hash, as pypiserver before 2.0 does
      unless started with C(--hash-algo sha256), verifying each by that hash; pip and uv accept such hashes too.
      The mirror''s pages give the sha256 of the verified bytes. Off: such files are refused, named.'
    type: bool
    default: false
  max_file_size:
    description:
    - 'Skip files larger than this (bytes, or with a K/M/G/T suffix). Empty: no limit.'
    type: raw
  workers:
    description:
    - Concurrent downloads and index requests.
    type: int
    default: 8
  processes:
    description:
    - Processes that share the I(workers) among them, each with its own interpreter lock, so that a sync
      uses more than one CPU core. They take the projects in turn. Files of 64 MiB or more that a project
      must download wait until the projects read have left 4 GiB of them, or all are read; then all
      processes share them, and publish their projects, before they start new ones. 0 means one per CPU
      core. 1 keeps the whole run in one process.
    type: int
    default: 0
  prune:
    description:
    - Remove files that no longer match the selection or were deleted upstream.
    type: bool
    default: false
  prune_max_fraction:
    description:
    - Refuse to delete more than this share of the mirror's files in one run unless I(force_prune).
    type: float
    default: 0.2
  force_prune:
    description:
    - 'Prune even past I(prune_max_fraction), and from an upstream whose serials are below the newest this mirror
      synced, which otherwise keeps what it no longer lists (an older carried disk, a lagging cache) and leaves out
      what it lists that prune removed as deleted upstream since: its serials are then the ones to follow.'
    type: bool
    default: false
  ca_bundle:
    description:
    - CA bundle to verify the upstream's TLS certificate with.
    type: path
  proxy:
    description:
    - HTTP(S) proxy URL for upstream requests. A login goes in the URL (C(http://user:password@proxy:3128)); it is
      never logged, and is masked in this module's output.
    type: str
  timeout:
    description:
    - Seconds to wait for the upstream on connect and on each read.
    type: float
    default: 30.0
  retries:
    description:
    - Retries, with exponential backoff, on 5xx, resets, truncation and timeouts.
    type: int
    default: 3
  lock_timeout:
    description:
    - Seconds to wait for a running sync on the same directory to finish; 0 fails at once.
    type: float
    default: 0.0
notes:
  - A change of selection options takes effect on the next run, without any force flag.
  - Exit status and failures are reported per file; a file that fails verification is never published.
seealso:
  - name: PEP 691
    description: JSON-based simple API for Python package indexes.
    link: https://peps.python.org/pep-0691/
"""

EXAMPLES = r"""
- name: Mirror what the lab needs for Python 3.11 on x86_64 Linux
  localpypi.mirror.pypi_sync:
    directory: /data/pypi
    projects:
      - requests>=2.31
      - numpy
    python_versions: ["3.11", "3.12"]
    platforms: [manylinux_2_28_x86_64]
  vars:
    ansible_python_interpreter: /opt/localpypi/venv/bin/python

- name: Show what a wider selection would download
  localpypi.mirror.pypi_sync:
    directory: /data/pypi
    projects: ["numpy>=1.26"]
  check_mode: true
  diff: true
"""

RETURN = r"""
stats:
  description: Counts of the run.
  returned: always
  type: dict
  sample:
    projects: 2
    projects_changed: 1
    files_downloaded: 14
    bytes_downloaded: 52133409
    files_published: 40
    files_removed: 0
added:
  description: Files downloaded (or, in check mode, that would be), at most 200 listed.
  returned: always
  type: list
  elements: str
removed:
  description: Files pruned (or that would be), at most 200 listed.
  returned: always
  type: list
  elements: str
warnings_upstream:
  description: Upstream input that was refused (unsafe file names, files without a hash).
  returned: always
  type: list
  elements: str
failures:
  description: One line per failed project or file.
  returned: always
  type: list
  elements: str
"""

import traceback
from urllib.parse import unquote, urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:  # the standard library only: the options are checked even where the engine's libraries are missing
    from ansible_collections.localpypi.mirror.plugins.module_utils.localpypi_sync.schema import argument_spec
except (ImportError, SyntaxError):  # an interpreter older than schema.py's Python 3.6.1 (NamedTuple defaults)
    argument_spec = None

try:
    from ansible_collections.localpypi.mirror.plugins.module_utils.localpypi_sync.config import (
        ConfigError,
        build_config,
    )
    from ansible_collections.localpypi.mirror.plugins.module_utils.localpypi_sync.sync import SyncAbort, run_sync
except (ImportError, SyntaxError):  # SyntaxError: an interpreter older than the engine's Python 3.9
    ENGINE_IMPORT_ERROR = traceback.format_exc()
else:
    ENGINE_IMPORT_ERROR = None


def _fallback_spec():
    """Enough of a spec to report the interpreter's age instead of failing on an unknown option."""
    return {"directory": {"type": "path", "required": True}}


def _mask_url_logins(module):
    """A login written into the upstream or proxy URL is masked wherever Ansible shows it (the module's
    arguments, messages); a token given as the user name alone is that login."""
    for name in ("upstream", "proxy"):
        value = module.params.get(name)
        if not isinstance(value, str) or "@" not in value:
            continue
        parts = urlsplit(value)
        secret = parts.password or parts.username
        if secret:
            module.no_log_values.update({secret, unquote(secret)})


def main():
    module = AnsibleModule(
        argument_spec=argument_spec() if argument_spec else _fallback_spec(),
        supports_check_mode=True,
        bypass_checks=argument_spec is None,
    )
    _mask_url_logins(module)
    if ENGINE_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("packaging, urllib3 and resolvelib on Python >= 3.9 "
                                                  "(the sync engine's)"),
                         exception=ENGINE_IMPORT_ERROR)
    try:
        config = build_config({key: value for key, value in module.params.items() if value is not None})
        result = run_sync(config, check_mode=module.check_mode)
    except (ConfigError, SyncAbort) as exc:
        module.fail_json(msg=str(exc))
    document = result.to_dict()
    output = {
        "changed": result.changed,
        "stats": document["stats"],
        "added": document["added"],
        "removed": document["removed"],
        "failures": result.failures,
        "warnings_upstream": document["warnings"],
    }
    if module._diff:
        output["diff"] = {
            "before": "".join(name + "\n" for name in document["removed"]),
            "after": "".join(name + "\n" for name in document["added"]),
            "before_header": config.directory + " (removed)",
            "after_header": config.directory + " (added)",
        }
    for warning in document["warnings"][:20]:
        module.warn(warning)
    if not result.ok:
        module.fail_json(msg=f"{len(result.failures)} failures; first: {result.failures[0]}", **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
