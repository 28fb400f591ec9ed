# Sourced by the check scripts. expect NAME STATUS(zero|nonzero) TEXT COMMAND…: runs COMMAND
# (120 s at most) and checks its exit status and that its output contains TEXT; counts the
# outcome in $passed and $failed, and shows the output's tail when a check fails.
suite=${suite:-checks}
passed=0
failed=0
expect() {
    local name=$1 status=$2 text=$3
    shift 3
    local output code
    output=$(timeout 120 "$@" 2>&1)
    code=$?
    local ok=1
    if [[ $code -eq 124 ]]; then ok=0; echo "FAIL $suite: $name: timed out (a rank hung)"; fi
    if [[ $status == zero && $code -ne 0 ]] || [[ $status == nonzero && $code -eq 0 ]]; then
        ok=0; echo "FAIL $suite: $name: exit status $code, expected $status"
    fi
    if ! grep -qF -- "$text" <<<"$output"; then ok=0; echo "FAIL $suite: $name: output lacks '$text'"; fi
    if ((ok)); then passed=$((passed + 1)); else failed=$((failed + 1)); echo "$output" | tail -15; fi
}
