"The package's shape: no module imports one that imports it back, counting imports inside functions too."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/'voicegender'


def imports(path:Path, modules:set)->set:
    "The package modules `path` imports, at the top or inside functions."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: out.add(node.module.split('.')[0])
            elif node.level == 1: out.update(a.name for a in node.names)
            elif node.module and node.module.startswith('voicegender.'): out.add(node.module.split('.')[1])
            elif node.module == 'voicegender': out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split('.')[1] for a in node.names if a.name.startswith('voicegender.'))
    return out & modules - {path.stem}


def cycles(graph:dict)->list:
    "Every module that can reach itself again through the import graph, with one path that does."
    found = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            m, path = stack.pop()
            for n in graph[m]:
                if n == start: found.append(path + [n]); stack = []; break
                if n not in seen: seen.add(n); stack.append((n, path + [n]))
    return found


def test_cycles_are_found():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c', 'a'], ['b', 'c', 'a', 'b'], ['c', 'a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycles():
    modules = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    graph = {m: imports(PKG/f'{m}.py', modules) for m in modules}
    assert graph['deploy'] >= {'core', 'speech', 'engine', 'calibrate'}   # the parser sees relative imports
    assert cycles(graph) == [], cycles(graph)


def test_prepare_accepts_every_distortion():
    "`voicegender prepare --distort` lists its choices without importing numpy: they must be `mfcc.DISTORTIONS`."
    import pytest
    from voicegender.cli import main
    from voicegender.mfcc import DISTORTIONS
    for kind in DISTORTIONS:
        with pytest.raises(SystemExit) as e: main(['prepare', '--distort', kind, '--help'])
        assert e.value.code == 0, kind
    with pytest.raises(SystemExit) as e: main(['prepare', '--distort', 'no_such_kind', '--help'])
    assert e.value.code == 2


def test_git_tracks_no_stray_binaries():
    "The shipped model is the only large file in git; other binary files are the figures in pngs/ (a probe's 2,000 JPEGs were once committed by mistake)."
    import subprocess, pytest
    root = PKG.parent
    try: files = subprocess.run(['git', 'ls-files', '-z'], cwd=root, capture_output=True, check=True).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError): pytest.skip("not a git checkout")
    files = [f for f in files if f and (root/f).is_file()]
    model = 'voicegender/models/voicegender.safetensors'
    big = [f for f in files if (root/f).stat().st_size > 2_000_000 and f != model]
    assert not big, f"files over 2 MB in git besides the shipped model: {big}"
    binary = [f for f in files if b'\0' in (root/f).read_bytes()[:8192] and f != model and not f.startswith('pngs/')]
    assert not binary, f"binary files in git outside pngs/: {binary[:10]} ({len(binary)} in all)"
    assert (root/model).stat().st_size < 45*2**20, "the shipped model is over 45 MiB"
