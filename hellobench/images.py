"""HelloBench image definitions: what each image contains, what its hello task runs, and how to tell
that the task is ready.

Every image is Debian minbase (bookworm, mmdebstrap) plus a package set, built by
tests/integration/debian_image.py on one shared base layer, the way Slacker's HelloBench images share
their distribution layers. Categories follow Slacker (FAST'16): distro, language, database, web server,
web framework, other.

A task is ready when
  - ("line", TEXT): a line of the task's output (stdout+stderr) contains TEXT, or
  - ("port", N):    something accepts TCP connections on 127.0.0.1:N (servers run with the host network,
                    each image on its own port so a straggler never answers for the next one).
Commands run as root in a writable sandbox (overlay upper / unpacked rootfs), so they may write under /tmp.
"""

import collections

Image = collections.namedtuple("Image", "name category packages cmd ready timeout")

QUICK = ("debian", "busybox", "python")

CATEGORIES = ("distro", "language", "database", "web server", "web framework", "other")


def _sh(script):
    return ["/bin/sh", "-c", script]


def _pg():
    b = "/usr/lib/postgresql/15/bin"
    return _sh("rm -rf /tmp/pg && mkdir -p /tmp/pg /run/postgresql && chown postgres /tmp/pg /run/postgresql && "
               f"exec setpriv --reuid=postgres --regid=postgres --init-groups sh -c "
               f"'{b}/initdb -D /tmp/pg >/dev/null && exec {b}/postgres -D /tmp/pg -k /tmp -h 127.0.0.1 -p 18432'")


def _mariadb():
    # Like the official image's entrypoint, the first start initialises an empty datadir. --force skips
    # mariadb-install-db's check that `hostname` or "localhost" resolves: a bare Debian rootfs has no
    # /etc/hosts (docker injects one; crun and `lazyfs run` do not), and the check exits 1 otherwise.
    # Its chatter goes to a file, shown only when it fails. /run/mysqld (the Debian config's pid-file
    # dir) is made by the init script, not the package, so the pid file goes to /tmp.
    return _sh("rm -rf /tmp/db && mariadb-install-db --user=root --force --skip-name-resolve --skip-test-db "
               "--datadir=/tmp/db >/tmp/db-install.log 2>&1 || { cat /tmp/db-install.log; exit 1; }; "
               "exec mariadbd --user=root --skip-name-resolve --datadir=/tmp/db --port=18306 --bind-address=127.0.0.1 "
               "--socket=/tmp/mysqld.sock --pid-file=/tmp/mysqld.pid")


_FLASK = ("from flask import Flask\napp = Flask('hello')\napp.route('/')(lambda: 'hello')\n"
          "app.run(host='127.0.0.1', port=18085)")

_EXPRESS = ("const e = require('express')(); e.get('/', (q, r) => r.send('hello'));"
            " e.listen(18086, '127.0.0.1');")

IMAGES = [
    # distros
    Image("debian", "distro", [], ["echo", "hello"], ("line", "hello"), 60),
    Image("busybox", "distro", ["busybox"], ["busybox", "echo", "hello"], ("line", "hello"), 60),
    # languages
    Image("python", "language", ["python3-minimal"], ["python3", "-c", "print('hello')"], ("line", "hello"), 60),
    Image("perl", "language", ["perl"], ["perl", "-MPOSIX", "-e", "print qq(hello\\n)"], ("line", "hello"), 60),
    Image("ruby", "language", ["ruby"], ["ruby", "-e", "puts 'hello'"], ("line", "hello"), 60),
    Image("node", "language", ["nodejs"], ["node", "-e", "console.log('hello')"], ("line", "hello"), 60),
    Image("lua", "language", ["lua5.4"], ["lua5.4", "-e", "print('hello')"], ("line", "hello"), 60),
    Image("golang", "language", ["golang-go"],
          _sh("rm -rf /tmp/h && mkdir -p /tmp/h && cd /tmp/h && printf 'package main\\nimport \"fmt\"\\n"
              "func main() { fmt.Println(\"hello\") }\\n' > h.go && HOME=/tmp GOCACHE=/tmp/gocache go run h.go"),
          ("line", "hello"), 180),
    Image("gcc", "language", ["gcc", "libc6-dev"],
          _sh("printf '#include <stdio.h>\\nint main(){puts(\"hello\");return 0;}\\n' > /tmp/h.c && "
              "gcc -o /tmp/h /tmp/h.c && /tmp/h"), ("line", "hello"), 120),
    Image("openjdk", "language", ["openjdk-17-jre-headless"], ["java", "-version"], ("line", "openjdk version"), 120),
    Image("php", "language", ["php-cli"], ["php", "-r", "echo \"hello\\n\";"], ("line", "hello"), 60),
    Image("r-base", "language", ["r-base-core"], ["Rscript", "-e", "cat('hello\\n')"], ("line", "hello"), 120),
    # databases
    Image("redis", "database", ["redis-server"],
          ["redis-server", "--port", "18379", "--bind", "127.0.0.1", "--save", ""], ("port", 18379), 60),
    Image("postgres", "database", ["postgresql-15"], _pg(), ("port", 18432), 180),
    Image("mariadb", "database", ["mariadb-server"], _mariadb(), ("port", 18306), 180),
    Image("sqlite", "database", ["sqlite3"], ["sqlite3", ":memory:", "select 'hello';"], ("line", "hello"), 60),
    Image("memcached", "database", ["memcached"], ["memcached", "-u", "root", "-l", "127.0.0.1", "-p", "18211"],
          ("port", 18211), 60),
    # web servers
    Image("nginx", "web server", ["nginx-light"],
          _sh("printf 'user root;\\npid /tmp/n.pid;\\nerror_log stderr;\\nevents {}\\nhttp { access_log off; client_body_temp_path /tmp;"
              " server { listen 127.0.0.1:18080; root /var/www/html; } }\\n'"
              " > /tmp/n.conf && exec nginx -c /tmp/n.conf -g 'daemon off;'"), ("port", 18080), 60),
    Image("apache2", "web server", ["apache2"],
          _sh(". /etc/apache2/envvars && mkdir -p $APACHE_RUN_DIR $APACHE_LOCK_DIR $APACHE_LOG_DIR && "
              "echo 'Listen 127.0.0.1:18081' > /etc/apache2/ports.conf && exec apache2 -DFOREGROUND"),
          ("port", 18081), 60),
    Image("lighttpd", "web server", ["lighttpd"],
          _sh("printf 'server.document-root = \"/var/www/html\"\\nserver.port = 18082\\n"
              "server.bind = \"127.0.0.1\"\\n' > /tmp/l.conf && exec lighttpd -D -f /tmp/l.conf"),
          ("port", 18082), 60),
    # web frameworks
    Image("django", "web framework", ["python3-django"],
          _sh("cd $(mktemp -d) && django-admin startproject hello && cd hello && "
              "exec python3 manage.py runserver 127.0.0.1:18083 --noreload"), ("port", 18083), 120),
    Image("flask", "web framework", ["python3-flask"], ["python3", "-c", _FLASK], ("port", 18085), 60),
    Image("express", "web framework", ["node-express"], ["node", "-e", _EXPRESS], ("port", 18086), 60),
    # others
    Image("rabbitmq", "other", ["rabbitmq-server"],
          _sh("echo '127.0.0.1 localhost' > /etc/hosts; export HOME=/tmp RABBITMQ_NODENAME=rabbit@localhost "
              "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=18672 RABBITMQ_DIST_PORT=18673 "
              "ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=18369; exec rabbitmq-server"), ("port", 18672), 240),
    Image("hello", "other", ["hello"], ["hello"], ("line", "Hello, world!"), 60),
    Image("git", "other", ["git"], _sh("git init -q /tmp/r && git -C /tmp/r status --short && echo hello"),
          ("line", "hello"), 60),
]

BY_NAME = {i.name: i for i in IMAGES}


def select(names=None, quick=False):
    """The images to measure: the quick set, a comma list of names, or all (KeyError on unknown names)."""
    if quick and not names:
        names = QUICK
    if not names:
        return list(IMAGES)
    return [BY_NAME[n] for n in names]


def config(image):
    """OCI image config for `image`. The hello task is passed on the command line (not baked into Cmd),
    so editing a task never rebuilds an image."""
    return {"Cmd": ["/bin/sh"]}
