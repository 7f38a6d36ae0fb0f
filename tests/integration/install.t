#!/usr/bin/env bash
# shellcheck disable=SC2016
# make install DESTDIR=$T/root PREFIX=/usr puts every file where the
# manuals' FILES sections say, with the right modes, rewrites the paths
# the files name, never touches a qscale.conf; make uninstall takes away
# what install put.
. "$(dirname "$0")/lib.sh"

R=$T/root
mk() {
	make --no-print-directory -C "$QSCALE_TOP" BUILD="$QSCALE_BUILD" \
	    DESTDIR="$1" PREFIX="$2" "${@:3}" >"$T/make.out" 2>&1
}
mk "$R" /usr install
rc=$?
check "make install DESTDIR=... PREFIX=/usr exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(tail -n 20 "$T/make.out")"

# The paths the installed manuals give in FILES.
man_files() {
	for p in "$R"/usr/share/man/man8/*.8 "$R"/usr/share/man/man5/*.5; do
		[ -f "$p" ] || continue
		sed -n '/^\.Sh FILES/,/^\.Sh /s/^\.It Pa \([^ ]*\)$/\1/p' "$p"
	done | sort -u
}
files=$(man_files)
check "the installed manuals list files" test -n "$files"
mode_of() { stat -c %a "$1" 2>/dev/null; }
want_mode() {
	case $1 in
	*/sbin/* | *.init) echo 755 ;;
	*) echo 644 ;;
	esac
}
installed=0
for f in $files; do
	case $f in
	/usr/sbin/* | /usr/share/qscale/* | /etc/qscale/*.example)
		installed=$((installed + 1))
		check "installed: $f" test -f "$R$f"
		check "mode $(want_mode "$f"): $f ($(mode_of "$R$f"))" \
		    test "$(mode_of "$R$f")" = "$(want_mode "$f")"
		;;
	*)	# where the operator or the daemon puts it
		check "not installed (the operator's or the daemon's): $f" \
		    test ! -e "$R$f"
		;;
	esac
done
check "the manuals name at least the programs and the service files ($installed)" \
    test "$installed" -ge 9
for p in /usr/share/man/man8/qscaled.8 /usr/share/man/man8/qscalectl.8 \
    /usr/share/man/man5/qscale.conf.5; do
	check "installed: $p, mode 644" test "$(mode_of "$R$p")" = 644
done
# Nothing installed that no manual names.
stray=""
for f in $(cd "$R" && find . -type f | sed 's|^\.||' | sort); do
	case $f in
	/usr/share/man/*) continue ;;
	esac
	printf '%s\n' "$files" | grep -qxF "$f" || stray="$stray $f"
done
check "every installed file is in a manual's FILES ($stray)" test -z "$stray"

check "the installed qscaled runs" sh -c "'$R/usr/sbin/qscaled' -V | grep -q '^qscaled '"
check "the installed qscalectl runs" sh -c "'$R/usr/sbin/qscalectl' -h 2>&1 | grep -q usage"
check "the example configuration is installed as it is" \
    cmp -s "$QSCALE_TOP/etc/qscale.conf.example" "$R/etc/qscale/qscale.conf.example"
check "no qscale.conf is made" test ! -e "$R/etc/qscale/qscale.conf"
left=$(grep -rlI '/usr/local/\(sbin\|share\)/' "$R" 2>/dev/null)
check "the installed files name PREFIX=/usr, not /usr/local ($left)" test -z "$left"
check "the unit runs /usr/sbin/qscaled" \
    grep -qx 'ExecStart=/usr/sbin/qscaled -f -c ${CONF}' "$R/usr/share/qscale/qscaled.service"
check "the init script's DAEMON is /usr/sbin/qscaled" \
    grep -qx 'DAEMON=/usr/sbin/qscaled' "$R/usr/share/qscale/qscaled.init"
check "the defaults file's DAEMON is /usr/sbin/qscaled" \
    grep -qx 'DAEMON=/usr/sbin/qscaled' "$R/usr/share/qscale/qscaled.default"
check "qscaled(8) names /usr/share/qscale" \
    grep -q 'Pa /usr/share/qscale/qscaled.service' "$R/usr/share/man/man8/qscaled.8"
quiet_lint() { [ -z "$(mandoc -T lint -W warning "$@" 2>&1)" ]; }
check "the installed manuals pass mandoc -T lint" \
    quiet_lint "$R"/usr/share/man/man8/*.8 "$R"/usr/share/man/man5/*.5

# A qscale.conf of the operator's: install and uninstall leave it be.
printf 'name = "mine";\n' >"$R/etc/qscale/qscale.conf"
chmod 600 "$R/etc/qscale/qscale.conf"
echo changed >>"$R/etc/qscale/qscale.conf.example"
mk "$R" /usr install
check "a second install exits 0" test $? -eq 0
check "and leaves qscale.conf as it was" \
    test "$(cat "$R/etc/qscale/qscale.conf")" = 'name = "mine";'
check "and its mode" test "$(mode_of "$R/etc/qscale/qscale.conf")" = 600
check "but updates the example" \
    cmp -s "$QSCALE_TOP/etc/qscale.conf.example" "$R/etc/qscale/qscale.conf.example"

mk "$R" /usr uninstall
check "make uninstall exits 0" test $? -eq 0
rest=$(cd "$R" && find . -type f | sed 's|^\.||')
check "make uninstall removes every file install put ($(echo "$rest" | tr '\n' ' '))" \
    test "$rest" = /etc/qscale/qscale.conf
check "and the data directory" test ! -e "$R/usr/share/qscale"
check "but keeps /etc/qscale, which holds qscale.conf" test -d "$R/etc/qscale"
mk "$R" /usr uninstall
check "uninstall twice is fine" test $? -eq 0

# The default PREFIX: the files as they are in the tree.
mk "$T/root2" /usr/local install
check "make install PREFIX=/usr/local exits 0" test $? -eq 0
for f in qscaled.init qscaled.service qscaled.default qscale.logrotate \
    grafana-dashboard.json iam-policy.json; do
	check "PREFIX=/usr/local: $f as in contrib/" \
	    cmp -s "$QSCALE_TOP/contrib/$f" "$T/root2/usr/local/share/qscale/$f"
done
check "PREFIX=/usr/local: qscaled in /usr/local/sbin" test -x "$T/root2/usr/local/sbin/qscaled"
check "PREFIX=/usr/local: the example in /etc/qscale" \
    test -f "$T/root2/etc/qscale/qscale.conf.example"
mk "$T/root2" /usr/local uninstall
check "PREFIX=/usr/local: uninstall leaves no file" \
    test -z "$(find "$T/root2" -type f)"
