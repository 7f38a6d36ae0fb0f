#!/usr/bin/env bash
# The configuration as an operator meets it: qscaled -n and -nv on the
# example, on a layered file with a site file (where each value came
# from), on a JSON export of a running daemon; errors in an included
# file name that file and line; the printed configuration loads again.
. "$(dirname "$0")/lib.sh"

has() { printf '%s\n' "$1" | grep -qF -- "$2"; }

# The example, as shipped (secrets in it: it must be chmod 600).
cp "$QSCALE_TOP/etc/qscale.conf.example" "$T/example.conf"
chmod 600 "$T/example.conf"
out=$("$QSCALED" -n -c "$T/example.conf" 2>&1)
check "-n on the example prints 'configuration OK'" test "$out" = "configuration OK"
out=$("$QSCALED" -nv -c "$T/example.conf" 2>&1)
check "-nv on the example ends with 'configuration OK'" \
    test "$(printf '%s\n' "$out" | tail -n 1)" = "configuration OK"
check "-nv on the example masks its secret" \
    sh -c "! printf '%s' \"\$1\" | grep -q YOUR-CLEARML-SECRET-KEY" _ "$out"
check "-nv on the example shows defaults as such" \
    has "$out" 'max_idle_time = "15m";  # '
chmod 644 "$T/example.conf"
out=$("$QSCALED" -n -c "$T/example.conf" 2>&1)
check "a readable example is refused ($out)" \
    test "$out" = "$T/example.conf: holds secrets but is readable by group or others: run chmod 600 $T/example.conf"

# A layered configuration: site file with defaults and match blocks.
mkdir -p "$T/etc"
cat >"$T/etc/site.conf" <<'EOF'
defaults = {
  polling_interval = "10s";
  agent = { init_script = "echo site"; };
  resource = { ami = "ami-site"; tags = { team = "site"; }; };
};
match = (
  { workers_prefix = "^prod-";
    max_idle_time = "1h";
    agent = { extra_vm_bash_script = "echo prod"; };
  },
  { workers_prefix = "^dev-"; max_idle_time = "1m"; }
);
EOF
chmod 644 "$T/etc/site.conf"	# no secret in it: may be readable
write_conf "$T/etc/qscale.conf" gpu cpu
sed -i -e '1i @include "site.conf"' -e 's/^workers_prefix = "qtest";/workers_prefix = "prod-eu";/' \
    -e '/^polling_interval/d' "$T/etc/qscale.conf"
AWS_REGION=eu-west-1 "$QSCALED" -nv -c "$T/etc/qscale.conf" >"$T/layered.out" 2>&1
rc=$?
check "-nv on the layered file exits 0" test "$rc" -eq 0
out=$(cat "$T/layered.out")
check "a value from defaults names the site file and line" \
    has "$out" "polling_interval = \"10s\";  # defaults $T/etc/site.conf:2"
check "a value from a match block names the block" \
    has "$out" "max_idle_time = \"1h\";  # match \"^prod-\" $T/etc/site.conf:8"
check "a value from the main file names its line" \
    has "$out" "workers_prefix = \"prod-eu\";  # $T/etc/qscale.conf:3"
check "a built-in default says so" has "$out" 'max_spin_up_time = "30m";  # default'
check "init_script is appended across the layers" \
    has "$out" "init_script = \"echo site\\necho prod\";  # defaults $T/etc/site.conf:3, match \"^prod-\" $T/etc/site.conf:9"
check "per-resource defaults apply to every resource" \
    test "$(grep -c 'ami = "ami-12345678";' "$T/layered.out")" -eq 2
check "the non-matching block is not applied" sh -c "! grep -q 'max_idle_time = \"1m\"' '$T/layered.out'"
check "-nv masks every secret" no_secret_in "$T/layered.out"

# The printed configuration loads again (with the secrets put back).
sed -e '$d' -e 's/secret_key = "\*\*\*\*\*\*\*\*"/secret_key = "clearml-SECRET-value-1"/' \
    -e 's/secret_access_key = "\*\*\*\*\*\*\*\*"/secret_access_key = "aws-SECRET-value-2"/' \
    -e 's/password = "\*\*\*\*\*\*\*\*"/password = "git-SECRET-value-3"/' \
    "$T/layered.out" >"$T/printed.conf"
chmod 600 "$T/printed.conf"
"$QSCALED" -nv -c "$T/printed.conf" >"$T/printed.out" 2>&1
check "the -nv output loads again" test "$(tail -n 1 "$T/printed.out")" = "configuration OK"
# Normalised text without the header and the origin comments.
strip() { sed -e '1d' -e 's/  # .*$//' "$1"; }
strip "$T/layered.out" >"$T/layered.norm"
strip "$T/printed.out" >"$T/printed.norm"
check "and gives the same configuration" cmp -s "$T/layered.norm" "$T/printed.norm"
sed -i 's/"clearml-SECRET-value-1"/"********"/' "$T/printed.conf"
out=$("$QSCALED" -n -c "$T/printed.conf" 2>&1)
check "a masked secret is refused, saying why ($out)" \
    has "$out" 'exported with its secrets masked'

# An error in an included file names that file and its line.
printf 'polling_interval = "1s";\nmax_idle_time = "soon";\n' >"$T/etc/broken-site.conf"
write_conf "$T/etc/broken.conf" gpu
sed -i '1i @include "broken-site.conf"' "$T/etc/broken.conf"
sed -i '/^polling_interval/d' "$T/etc/broken.conf"
out=$("$QSCALED" -n -c "$T/etc/broken.conf" 2>&1)
rc=$?
check "-n on a broken include exits 1" test "$rc" -eq 1
check "the error names the included file and line ($out)" \
    test "$out" = "$T/etc/broken-site.conf:2: max_idle_time: \"soon\" is not a duration: expected a number, as in 45s, 15m or 2h"
printf 'x = ;\n' >"$T/etc/syntax-site.conf"
write_conf "$T/etc/syntax.conf" gpu
sed -i '3i @include "syntax-site.conf"' "$T/etc/syntax.conf"
out=$("$QSCALED" -n -c "$T/etc/syntax.conf" 2>&1)
check "a syntax error in an include names that file ($out)" \
    test "$out" = "$T/etc/syntax-site.conf:1: syntax error"

# ignore_include_errors: the broken site files are left out, each error
# shown; without the key they stop qscaled as above.
write_conf "$T/etc/ignore.conf" gpu
sed -i -e '3i @include "syntax-site.conf"' -e '3i @include "broken-site.conf"' \
    -e '3i ignore_include_errors = true;' -e '/^polling_interval/d' \
    "$T/etc/ignore.conf"
out=$("$QSCALED" -n -c "$T/etc/ignore.conf" 2>&1)
rc=$?
check "ignore_include_errors: -n exits 0 ($out)" test "$rc" -eq 0
check "... and shows the syntax error as a warning" \
    has "$out" "$T/etc/syntax-site.conf:1: syntax error"
check "... and the bad value, with its file and line" \
    has "$out" "$T/etc/broken-site.conf:2: max_idle_time: \"soon\" is not a duration"
check "... says which files were left out" \
    has "$out" "$T/etc/broken-site.conf: left out, with its errors above (ignore_include_errors = true)"
check "... and ends with 'configuration OK'" \
    test "$(printf '%s\n' "$out" | tail -n 1)" = "configuration OK"
out=$("$QSCALED" -nv -c "$T/etc/ignore.conf" 2>/dev/null)
check "... a left-out file sets nothing (its polling_interval is not taken)" \
    has "$out" 'polling_interval = "30s";  # default'

# The app's vault text, as the team keeps it in ClearML.
cat >"$T/etc/vault.hocon" <<'EOF'
auto_scaler.v1.aws {
   aws_region: "eu-central-1"
   extra_vm_bash_script: """echo from-vault"""
   match {
      "^qtest$": { extra_clearml_conf: "agent.docker_force_pull: true" }
   }
}
EOF
write_conf "$T/etc/vault.conf" gpu
sed -i -e '3i vault_file = "vault.hocon";' -e '/region = "us-east-1";/d' \
    "$T/etc/vault.conf"
out=$("$QSCALED" -nv -c "$T/etc/vault.conf" 2>&1)
check "vault_file: -nv takes aws_region from the vault, saying so" \
    has "$out" "region = \"eu-central-1\";  # vault $T/etc/vault.hocon:2"
check "... extra_vm_bash_script becomes the init script" \
    has "$out" "init_script = \"echo from-vault\";  # vault $T/etc/vault.hocon:3"
check "... and the matching entry applies on workers_prefix" \
    has "$out" "extra_clearml_conf = \"agent.docker_force_pull: true\";  # match \"^qtest\$\" $T/etc/vault.hocon:5"
printf 'auto_scaler.v1.aws {\n  aws_regin: "x"\n}\n' >"$T/etc/vault.hocon"
out=$("$QSCALED" -n -c "$T/etc/vault.conf" 2>&1)
check "... an unknown vault key names the vault's file and line ($out)" \
    has "$out" "$T/etc/vault.hocon:2: vault: unknown key 'aws_regin'"

# custom_launch_spec may not replace the tags that mark qscale's instances.
cat >"$T/etc/spec-site.conf" <<'EOF'
defaults = { resource = { custom_launch_spec = {
  TagSpecifications = ( { ResourceType = "instance"; Tags = (
    { Key = "team"; Value = "ml"; },
    { Key = "qscale:resource"; Value = "other"; } ); } );
}; }; };
EOF
write_conf "$T/etc/spec.conf" gpu
sed -i '1i @include "spec-site.conf"' "$T/etc/spec.conf"
out=$("$QSCALED" -n -c "$T/etc/spec.conf" 2>&1)
rc=$?
check "-n refuses a custom_launch_spec that sets a qscale: tag (rc $rc)" \
    test "$rc" -eq 1
check "the error names the file and line of that tag ($out)" \
    test "$out" = "$T/etc/spec-site.conf:4: custom_launch_spec.TagSpecifications element 1, Tags element 2: tag key \"qscale:resource\" is reserved (keys starting with qscale: are how qscale finds its instances, aws: is EC2's)"
write_conf "$T/typo.conf" gpu
sed -i 's/^polling_interval/polling_intervl/' "$T/typo.conf"
out=$("$QSCALED" -n -c "$T/typo.conf" 2>&1)
check "an unknown key gets a suggestion ($out)" \
    test "$out" = "$T/typo.conf:3: unknown key 'polling_intervl' (did you mean 'polling_interval'?)"

# Secrets from the environment: the file may then be readable.
write_conf "$T/env.conf" gpu
sed -i '/secret_key = /d; /secret_access_key = /d; /access_key_id = /d; s/password = "git-SECRET-value-3"; //' "$T/env.conf"
chmod 644 "$T/env.conf"
out=$(CLEARML_API_SECRET_KEY=clearml-SECRET-value-1 AWS_ACCESS_KEY_ID=AKIAENV \
    AWS_SECRET_ACCESS_KEY=aws-SECRET-value-2 "$QSCALED" -nv -c "$T/env.conf" 2>&1)
check "secrets from the environment load from a readable file" \
    test "$(printf '%s\n' "$out" | tail -n 1)" = "configuration OK"
check "-nv says they came from the environment" \
    has "$out" 'secret_key = "********";  # environment CLEARML_API_SECRET_KEY'
check "and masks them" sh -c "! printf '%s' \"\$1\" | grep -q SECRET-value" _ "$out"

# The running configuration, exported as JSON, loads as a .json file.
write_conf "$T/qscale.conf" gpu cpu
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts"

# A reload that meets a broken site file: refused without the key, taken
# without that file with it, each error logged.
printf 'max_requeues = 5;\n' >"$T/site-ok.conf"
cp "$T/qscale.conf" "$T/qscale.conf.orig"
sed -i '3i @include "site-ok.conf"' "$T/qscale.conf"
printf 'max_requeues = = 5;\n' >"$T/site-ok.conf"
kill -HUP "$SUP_PID"
check "reload with a broken site file and no ignore_include_errors fails" \
    wait_for 5 grep -q "reload failed; keeping the running configuration" "$T/log/qscaled.log"
sed -i '3i ignore_include_errors = true;' "$T/qscale.conf"
kill -HUP "$SUP_PID"
reloads_at_least() {
	test "$(grep -c 'configuration reloaded' "$T/log/qscaled.log")" -ge "$1"
}
check "with ignore_include_errors the reload goes on" \
    wait_for 5 reloads_at_least 1
check "... and logs the error as FILE:LINE: message" \
    grep -q "WARN qscaled: $T/site-ok.conf:1: syntax error" "$T/log/qscaled.log"
check "... and the file it left out" \
    grep -q "WARN qscaled: $T/site-ok.conf: left out" "$T/log/qscaled.log"
cp "$T/qscale.conf.orig" "$T/qscale.conf"
kill -HUP "$SUP_PID"
check "a reload back to the file without the include goes on" \
    wait_for 5 reloads_at_least 2
ctl export-config --with-secrets >"$T/exported.json"
rc=$?
check "export-config --with-secrets works" test "$rc" -eq 0
ctl export-config >"$T/masked.json"
check "a plain export holds no secret" no_secret_in "$T/masked.json"
check "a plain export shows that secrets are set" grep -q '"\*\*\*\*\*\*\*\*"' "$T/masked.json"
stop_qscaled
chmod 600 "$T/exported.json" "$T/masked.json"
out=$("$QSCALED" -n -c "$T/exported.json" 2>&1)
check "qscaled -n loads the JSON export ($out)" test "$out" = "configuration OK"
"$QSCALED" -nv -c "$T/qscale.conf" >"$T/a.out" 2>&1
"$QSCALED" -nv -c "$T/exported.json" >"$T/b.out" 2>&1
strip "$T/a.out" >"$T/a.norm"
strip "$T/b.out" >"$T/b.norm"
check "the export gives the same configuration" cmp -s "$T/a.norm" "$T/b.norm"
check "-nv on JSON names the JSON file's lines" \
    grep -qE "# $T/exported.json:[0-9]+\$" "$T/b.out"
start_qscaled "$T/exported.json" || { not_ok "qscaled starts on the export"; exit 1; }
ok "qscaled runs on the JSON export"
ctl export-config --with-secrets >"$T/exported2.json"
stop_qscaled
check "load, export, load, export: identical" cmp -s "$T/exported.json" "$T/exported2.json"
out=$("$QSCALED" -n -c "$T/masked.json" 2>&1)
rc=$?
check "a masked export does not load" test "$rc" -eq 1
check "it says it was exported masked and how to export it" \
    has "$out" "this configuration was exported with its secrets masked; set the secret, or export it with 'qscalectl export-config --with-secrets'"
check "every error names the JSON file and a line" \
    sh -c "! printf '%s\n' \"\$1\" | grep -vqE '^$T/masked.json:[0-9]+: '" _ "$out"
sed -i '0,/"max_idle_time":.*/s//"max_idle_time": "soon",/' "$T/exported.json"
line=$(grep -n '"max_idle_time"' "$T/exported.json" | head -n 1 | cut -d: -f1)
out=$("$QSCALED" -n -c "$T/exported.json" 2>&1)
check "an error in JSON names its line ($out)" \
    test "$out" = "$T/exported.json:$line: max_idle_time: \"soon\" is not a duration: expected a number, as in 45s, 15m or 2h"
check "no secret in any output" no_secret_in "$T/log" "$T/qscaled.out" "$T/layered.out" "$T/masked.json"

# The ClearML app's forms, as qscaled -n meets them.
write_conf "$T/app.conf" gpu
sed -i 's/^polling_interval = "1s";/polling_interval = "1s";\nmax_idle_time = 15;/' \
    "$T/app.conf"
line=$(grep -n '^max_idle_time' "$T/app.conf" | cut -d: -f1)
out=$("$QSCALED" -n -c "$T/app.conf" 2>&1)
check "a bare number for a duration is refused, with both readings" \
    test "$out" = "$T/app.conf:$line: max_idle_time = 15: a duration needs a unit: write \"15m\" for 15 minutes (as the ClearML app's fields mean it) or \"15s\" for 15 seconds"
write_conf "$T/app.conf" gpu
sed -i 's/ami = "ami-12345678";/ami = "ami-12345678";\n    subnets = "subnet-1, subnet-2"; security_groups = "sg-1,sg-2";\n    tags = "team=ml,owner=ops"; max_idle_time = "1h";\n    availability_zone = "us-east-1a";\n    custom_launch_spec = { EbsOptimized = true;\n      MaxCount = 5; };/' \
    "$T/app.conf"
line=$(grep -n 'MaxCount' "$T/app.conf" | cut -d: -f1)
out=$("$QSCALED" -n -c "$T/app.conf" 2>&1)
check "custom_launch_spec.MaxCount is refused by -n at its line" \
    has "$out" "$T/app.conf:$line: resource \"gpu\": custom_launch_spec.MaxCount is set by qscale in every launch and cannot be given here"
sed -i 's/MaxCount = 5; //' "$T/app.conf"
line=$(grep -n 'availability_zone' "$T/app.conf" | cut -d: -f1)
"$QSCALED" -nv -c "$T/app.conf" >"$T/app.out" 2>"$T/app.err"
check "-n loads the app's forms" test "$(tail -n 1 "$T/app.out")" = "configuration OK"
check "-n says availability_zone is not used beside subnets, at its line" \
    grep -qx "$T/app.conf:$line: resource \"gpu\": availability_zone \"us-east-1a\" is not used: subnets are set, and each subnet lies in one zone" "$T/app.err"
check "a comma string of subnets is the list it means" \
    grep -q 'subnets = \[ "subnet-1", "subnet-2" \];' "$T/app.out"
check "so are security groups" \
    grep -q 'security_groups = \[ "sg-1", "sg-2" \];' "$T/app.out"
check "key=value tags are tags" grep -q 'owner = "ops";' "$T/app.out"
check "max_idle_time per resource" \
    grep -qE '^ +max_idle_time = "1h";' "$T/app.out"
