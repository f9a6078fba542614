# The kernel side of the differential test. It chroots into the overlay mount point, so that no symlink
# planted in a layer ('/etc/passwd', '../../..') can reach the host, then answers one JSON op per line.
# argv: mountpoint umask. Everything it needs is imported before the chroot.
import errno, hashlib, json, os, stat, sys

RECENT = 1_500_000_000  # layer and utime times are older; anything newer was set by "now"

def summary(st):
    fmt = stat.S_IFMT(st.st_mode)
    kind = {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'symlink', stat.S_IFCHR: 'chr',
            stat.S_IFBLK: 'blk', stat.S_IFIFO: 'fifo', stat.S_IFSOCK: 'sock'}.get(fmt, 'unknown')
    out = {'type': kind, 'mode': stat.S_IMODE(st.st_mode), 'nlink': st.st_nlink}
    if kind != 'dir':
        out['size'] = st.st_size  # a directory's size is the backing fs's business
    secs = st.st_mtime_ns // 1_000_000_000
    out['mtime'] = secs if secs < RECENT else 'recent'
    return out

def content(data):
    if len(data) <= 256:
        return data.decode('latin-1')
    return '<%d bytes sha1=%s>' % (len(data), hashlib.sha1(data).hexdigest()[:12])

def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b''.join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)

handles = {}

def fd_of(h):
    if h not in handles:
        raise LookupError()
    return handles[h]

def run(req):
    op = req['op']
    if op in ('stat', 'lstat'):
        return summary(os.stat(req['path'], follow_symlinks=(op == 'stat')))
    if op == 'readdir':
        return sorted(os.listdir(req['path']))
    if op == 'readlink':
        return os.readlink(req['path'])
    if op == 'readFile':
        return content(read_all(req['path']))
    if op == 'unlink':
        os.unlink(req['path']); return None
    if op == 'rmdir':
        os.rmdir(req['path']); return None
    if op == 'mkdir':
        os.mkdir(req['path'], req['mode']); return None
    if op == 'chmod':
        os.chmod(req['path'], req['mode']); return None
    if op == 'truncate':
        os.truncate(req['path'], req['len']); return None
    if op == 'utime':
        os.utime(req['path'], (req['atime'], req['mtime'])); return None
    if op == 'writeFile':
        fd = os.open(req['path'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, req['data'].encode('latin-1'))
        finally:
            os.close(fd)
        return None
    if op == 'rename':
        os.rename(req['from'], req['to']); return None
    if op == 'link':
        # link(2) does not follow a symlink source, and neither does Node's linkSync.
        os.link(req['from'], req['to'], follow_symlinks=False); return None
    if op == 'sameIno':
        a = os.lstat(req['from']); b = os.lstat(req['to'])
        return a.st_ino == b.st_ino and a.st_dev == b.st_dev
    if op == 'symlink':
        os.symlink(req['target'], req['path']); return None
    if op == 'open':
        handles[req['h']] = os.open(req['path'], req['flags'], req['mode']); return None
    if op == 'close':
        fd = fd_of(req['h']); del handles[req['h']]; os.close(fd); return None
    if op == 'fstat':
        return summary(os.fstat(fd_of(req['h'])))
    if op == 'fstatIno':
        a = os.fstat(fd_of(req['h'])); b = os.lstat(req['path'])
        return a.st_ino == b.st_ino and a.st_dev == b.st_dev
    if op == 'read':
        return content(os.read(fd_of(req['h']), req['len']))
    if op == 'pread':
        return content(os.pread(fd_of(req['h']), req['len'], req['pos']))
    if op == 'write':
        return os.write(fd_of(req['h']), req['data'].encode('latin-1'))
    if op == 'ftruncate':
        os.ftruncate(fd_of(req['h']), req['len']); return None
    if op == 'walk':
        return walk()
    raise ValueError('unknown op ' + op)

def walk():
    out = []
    first = {}
    def visit(path):
        try:
            st = os.lstat(path)
        except OSError as e:
            out.append({'path': path, 'error': code_of(e)})
            return
        e = summary(st)
        e['path'] = path
        key = (st.st_dev, st.st_ino)
        e['ino'] = first.setdefault(key, path)
        if e['type'] == 'symlink':
            e['target'] = os.readlink(path)
        elif e['type'] == 'file':
            try:
                e['content'] = content(read_all(path))
            except OSError as err:
                e['content'] = 'error ' + code_of(err)
        out.append(e)
        if e['type'] == 'dir':
            try:
                names = sorted(os.listdir(path))
            except OSError as err:
                e['list'] = 'error ' + code_of(err)
                names = []
            for name in names:
                visit(('' if path == '/' else path) + '/' + name)
    visit('/')
    return out

def code_of(e):
    name = errno.errorcode.get(e.errno, 'E%d' % e.errno)
    return 'ENOTSUP' if name == 'EOPNOTSUPP' else name

def main():
    os.chroot(sys.argv[1])
    os.chdir('/')
    os.umask(int(sys.argv[2]))
    for line in sys.stdin:
        req = json.loads(line)
        try:
            res = {'ok': True, 'value': run(req)}
        except OSError as e:
            res = {'ok': False, 'code': code_of(e)}
        except LookupError:
            res = {'ok': False, 'code': 'NOHANDLE'}
        sys.stdout.write(json.dumps(res) + '\n')
        sys.stdout.flush()

main()
