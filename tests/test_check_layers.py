"""tests/check-layers on small trees of its own: what it lets through and what
it refuses, with the message an engineer sees. Run by make test (pytest)."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "check-layers")

# A tree shaped like readoutd's, small: a header in each of a few layers.
FILES = {
    "proto/readout.proto": 'syntax = "proto3";\n',
    "driver-shim/uapi/readout_shim.h": "",
    "server/common/util.h": "#include <stdint.h>\n",
    "server/common/yaml.c": '#include "common/util.h"\n#include <yaml.h>\n',
    "server/card/card.h": '#include "common/util.h"\n',
    "server/card/card_shim.c": '#include "card/card.h"\n#include "uapi/readout_shim.h"\n',
    "server/core/pool.h": '#include "card/card.h"\n#include "proto/readout.pb-c.h"\n',
    "server/core/sink.h": '#include "core/pool.h"\n',
    "server/sinks/live.h": "",
    "server/sinks/live.c": '#include "core/sink.h"\n#include "common/util.h"\n',
    "clients/lib/rdoclient.h": '#include "common/util.h"\n',
    "clients/tools/readoutctl.c": '#include "lib/rdoclient.h"\n',
}


@pytest.fixture
def tree(tmp_path):
    """A tree without violations and the repository's tests/layers."""
    for path, text in FILES.items():
        f = tmp_path / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    (tmp_path / "tests").mkdir()
    shutil.copy(os.path.join(HERE, "layers"), tmp_path / "tests" / "layers")
    return tmp_path


def check(root):
    r = subprocess.run([SCRIPT, str(root)], capture_output=True, text=True)
    return r.returncode, r.stdout


def add(root, path, line):
    with open(root / path, "a") as f:
        f.write(line + "\n")


def test_a_tree_that_follows_the_order_passes(tree):
    assert check(tree) == (0, "check-layers: every include follows tests/layers\n")


def test_the_repository_itself_passes():
    rc, out = check(os.path.dirname(HERE))
    assert rc == 0, out


def test_an_include_against_the_order_names_file_line_and_order(tree):
    add(tree, "server/core/sink.h", '#include "sinks/live.h"')
    rc, out = check(tree)
    assert rc == 1
    assert out.splitlines() == [
        'server/core/sink.h:2: #include "sinks/live.h": core may not include sinks '
        "(server: proto < common < card < core < dma < sinks < net < service), tests/layers",
        "check-layers: 1 include(s) against tests/layers",
    ]


def test_clients_may_not_include_the_daemons_layers(tree):
    add(tree, "clients/tools/readoutctl.c", '#include "core/pool.h"')
    rc, out = check(tree)
    assert rc == 1
    assert "tools may not include core (clients: proto < common < lib < tools)" in out


def test_an_include_not_by_path_is_refused_with_the_path_to_use(tree):
    add(tree, "server/sinks/live.c", '#include "util.h"')
    rc, out = check(tree)
    assert rc == 1
    assert ('server/sinks/live.c:3: #include "util.h": include by path from the tree\'s '
            'root: "common/util.h"') in out


def test_a_header_that_does_not_exist_is_refused(tree):
    add(tree, "server/sinks/live.c", '#include "core/nothere.h"')
    rc, out = check(tree)
    assert rc == 1
    assert 'server/sinks/live.c:3: #include "core/nothere.h": no such header in layer core' in out


def test_angle_brackets_do_not_hide_a_header_of_the_project(tree):
    add(tree, "server/core/sink.h", "#include <sinks/live.h>")
    rc, out = check(tree)
    assert rc == 1
    assert "a header of readoutd's, include it with quotes" in out


def test_a_library_header_only_its_files_may_include(tree):
    add(tree, "server/card/card.h", "#include <yaml.h>")
    rc, out = check(tree)
    assert rc == 1
    assert "server/card/card.h:2: #include <yaml.h>: only server/common/yaml.c may include it" in out


def test_uapi_is_open_to_card_alone(tree):
    add(tree, "server/sinks/live.c", '#include "uapi/readout_shim.h"')
    rc, out = check(tree)
    assert rc == 1
    assert "only card may include uapi" in out


def test_an_include_cycle_is_refused(tree):
    add(tree, "server/core/pool.h", '#include "core/sink.h"')
    rc, out = check(tree)
    assert rc == 1
    assert "include cycle: server/core/pool.h -> server/core/sink.h -> server/core/pool.h" in out


def test_a_file_outside_the_layers_folders_is_refused(tree):
    (tree / "server" / "loose.c").write_text("")
    rc, out = check(tree)
    assert rc == 1
    assert "server/loose.c:1: not in a layer's folder" in out


def test_a_malformed_layers_file_is_refused_naming_its_line(tree):
    with open(tree / "tests" / "layers", "a") as f:
        f.write("server\n")
    r = subprocess.run([SCRIPT, str(tree)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "expected 'TREE: LAYER...' or 'only LAYER: LAYER...'" in r.stderr
    assert "tests/layers:" in r.stderr
