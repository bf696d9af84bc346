"""The config's schema: every option the three fronts share (the module's options, the YAML config file's keys,
the sync role's variables), with its type, default and text, and the Ansible argument spec made from it.

The module builds its argument spec from here on whatever Python the host gives it, before it imports the engine:
so this file needs the standard library only, and imports on Python 3.6 (EL8's platform-python, which Ansible finds
first there). The options given are checked, and then the module names what is missing, not an option."""

from typing import Any, Dict, NamedTuple, Optional, Tuple


class Option(NamedTuple):
    name: str
    kind: str  # str, path, int, float, bool, list, size, moment (a date, a time or an age)
    default: Any
    description: str
    choices: Optional[Tuple[str, ...]] = None
    required: bool = False
    # True when a change of this option changes which files a project gets;
    # such a change re-evaluates every project on the next run.
    selects: bool = False
    # A selecting option added after mirrors were made enters the fingerprint only when set, so that upgrading
    # the engine re-evaluates no project.
    added_later: bool = False


ALL_PROJECTS = "*"
PACKAGE_TYPES = ("sdist", "wheel")

OPTIONS: Tuple[Option, ...] = (
    Option("upstream", "str", None,
           "PEP 691/503 simple index to mirror from. Default: the public index as pip knows it. An index that "
           "wants a login takes it as pip does, in the URL (C(https://user:token@host/simple/), special characters "
           "percent-encoded); it is sent to that host only, and never logged. Or another mirror's tree on this "
           "machine's disk, carried from a connected site: its C(simple/) directory as a file URL "
           "(C(file:///media/disk/pypi/web/simple/)), whose files are read from the directory above it only.",
           selects=True),
    Option("directory", "path", None,
           "Mirror root. C(web/) under it is what a web server serves; C(state/) holds the engine's bookkeeping.",
           required=True),
    Option("projects", "list", [],
           "PEP 508 requirement strings (C(requests>=2.31), C(numpy)); C(*) mirrors every project.",
           selects=True),
    Option("requirements_files", "list", [],
           "pip requirements files whose requirements are mirrored like I(projects): C(-r) nesting, comments, "
           "markers, extras and C(-c) constraints, as pip reads them: each line applies on the targets its "
           "marker holds on. A file named C(pylock.toml) or "
           "C(pylock.<name>.toml) is read as a PEP 751 lock file: each package it installs from an index, at its "
           "locked version, with its marker. Hashes they pin (C(--hash), a lock's files) are held against the index's: "
           "a file whose hash differs, so that a client installing with them would refuse it, is warned of. "
           "Relative paths are read from the config file's directory.",
           selects=True),
    Option("dependencies", "bool", False,
           "Also mirror what the requested projects need, following C(Requires-Dist) transitively for every "
           "target in I(python_versions) x I(platforms) (both required then, unless I(targets) names every pair) "
           "and I(targets), with markers and C(Requires-Python).",
           selects=True),
    Option("extras", "list", [],
           "Extras to follow for every requested project, besides those its requirement names.", selects=True),
    Option("resolution", "str", "candidates",
           "With I(dependencies): C(candidates) keeps every release a resolution could pick within the "
           "specifiers and I(latest); C(pinned) keeps only the releases the resolver picks for each target.",
           choices=("candidates", "pinned"), selects=True),
    Option("exclude", "list", [], "Project names or globs never mirrored.", selects=True),
    Option("private_directory", "path", None,
           "Package directory of a private index beside the mirror (pypiserver's). Every project with a file "
           "there is claimed: never read from the upstream, never resolved there, and a page already mirrored "
           "for it is withdrawn, so an upstream project of the same name never reaches clients. The run stops, "
           "syncing nothing, when the directory cannot be listed."),
    Option("private_projects", "list", [],
           "Project names or globs claimed like those in I(private_directory), before anything is uploaded "
           "(C(acme-*) reserves a prefix)."),
    Option("python_versions", "list", [],
           "Target Python versions (C(3.11)), quoted in YAML; a free-threaded CPython is a target of its own "
           "(C(3.14t)), whose wheels carry the C(cp314t) ABI. Files that cannot install on any of them are skipped. "
           "Empty: all.",
           selects=True),
    Option("platforms", "list", [],
           "Target platform tags (C(manylinux_2_28_x86_64), C(win_amd64), C(macosx_11_0_arm64), "
           "C(ios_13_0_arm64_iphoneos), C(android_24_arm64_v8a), C(pyemscripten_2026_0_wasm32)); compatible older "
           "tags are kept too, pure wheels always. Empty: all.",
           selects=True),
    Option("targets", "list", [],
           "Python/platform pairs served besides the product of I(python_versions) and I(platforms), or, with both "
           "empty, instead of it: C(3.12/manylinux_2_28_x86_64), C(3.13/win_amd64), "
           "C(3.14/pyemscripten_2026_0_wasm32). A fleet whose servers run one Python and whose desktops another "
           "gets each the wheels it installs, and not every Python's for every platform; with I(dependencies), each "
           "pair is resolved for, and only those.",
           selects=True, added_later=True),
    Option("package_types", "list", list(PACKAGE_TYPES), "Distribution types to mirror.",
           choices=PACKAGE_TYPES, selects=True),
    Option("prereleases", "bool", False, "Mirror pre-releases too.", selects=True),
    Option("latest", "int", 0, "Keep the newest N matching releases of each project on each target Python and "
           "platform, as pip there would choose (a yanked release takes no place); 0 keeps all. With dependencies, "
           "the older releases pip backtracks to are kept too.", selects=True),
    Option("include_yanked", "bool", True, "Mirror yanked files (keeping their yank marker).", selects=True),
    Option("exclude_newer", "moment", None,
           "Leave out files uploaded after this moment: a date (C(2026-06-01), midnight UTC), a time "
           "(C(2026-06-01T12:00:00Z)), or an age (C(7d), C(36h), or as uv writes one, C(7 days) or C(P7D)). An "
           "age is a cooldown: a release is mirrored only once it is that old, when the index has had time to "
           "quarantine a malicious one. As with uv's C(--exclude-newer), files without an upload time (PEP 700; "
           "an index with HTML pages only gives none) are left out too, and a resolution sees only the releases "
           "left. Empty: no limit.",
           selects=True, added_later=True),
    Option("exclude_newer_except", "list", [],
           "Project names or globs that I(exclude_newer) does not hold back: a security release wanted before the "
           "cooldown ends. Their files of any age are mirrored, and a resolution sees them all.",
           selects=True, added_later=True),
    Option("weak_hashes", "bool", False,
           "Also mirror files whose index gives only an md5, sha1 or sha224 hash, as pypiserver before 2.0 does "
           "unless started with C(--hash-algo sha256), verifying each by that hash; pip and uv accept such hashes "
           "too. The mirror's pages give the sha256 of the verified bytes. Off: such files are refused, named.",
           selects=True, added_later=True),
    Option("max_file_size", "size", None,
           "Skip files larger than this (bytes, or with a K/M/G/T suffix). Empty: no limit.", selects=True),
    Option("workers", "int", 8, "Concurrent downloads and index requests."),
    Option("processes", "int", 0,
           "Processes that share the I(workers) among them, each with its own interpreter lock, so that a sync "
           "uses more than one CPU core. They take the projects in turn. Files of 64 MiB or more that a project "
           "must download wait until the projects read have left 4 GiB of them, or all are read; then all "
           "processes share them, and publish their projects, before they start new ones. 0: one per CPU "
           "core. 1 keeps the whole run in one process."),
    Option("prune", "bool", False,
           "Remove files that no longer match the selection or were deleted upstream.", selects=True),
    Option("prune_max_fraction", "float", 0.2,
           "Refuse to delete more than this share of the mirror's files in one run unless I(force_prune)."),
    Option("force_prune", "bool", False,
           "Prune even past I(prune_max_fraction), and from an upstream whose serials are below the newest this "
           "mirror synced, which otherwise keeps what it no longer lists (an older carried disk, a lagging cache) "
           "and leaves out what it lists that prune removed as deleted upstream since: its serials are then the "
           "ones to follow."),
    Option("ca_bundle", "path", None, "CA bundle to verify the upstream's TLS certificate with."),
    Option("proxy", "str", None,
           "HTTP(S) proxy URL for upstream requests; a login goes in the URL (C(http://user:password@proxy:3128)) "
           "and is never logged."),
    Option("timeout", "float", 30.0, "Seconds to wait for the upstream on connect and on each read."),
    Option("retries", "int", 3, "Retries, with exponential backoff, on 5xx, resets, truncation and timeouts."),
    Option("lock_timeout", "float", 0.0,
           "Seconds to wait for a running sync on the same directory to finish; 0 fails at once."),
)

OPTIONS_BY_NAME: Dict[str, Option] = {option.name: option for option in OPTIONS}

_ANSIBLE_TYPES = {"str": "str", "path": "path", "int": "int", "float": "float", "bool": "bool",
                  "list": "list", "size": "raw", "moment": "str"}


def argument_spec() -> Dict[str, Dict[str, Any]]:
    """The Ansible module's argument spec, derived from OPTIONS."""
    spec: Dict[str, Dict[str, Any]] = {}
    for option in OPTIONS:
        entry: Dict[str, Any] = {"type": _ANSIBLE_TYPES[option.kind]}
        if option.required:
            entry["required"] = True
        elif option.default is not None:
            entry["default"] = option.default
        if option.kind == "list":
            entry["elements"] = "str"
        if option.choices:
            entry["choices"] = list(option.choices)
        spec[option.name] = entry
    return spec
