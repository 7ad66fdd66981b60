# What ./run-tests and bench/run install before they start, sourced by both (bash).

# install_debian_packages COMMAND:PACKAGE...: apt-get installs each PACKAGE whose COMMAND is missing
# (a COMMAND with a slash is a path to look for).
install_debian_packages() {
    local missing=() pair command package
    for pair in "$@"; do
        command="${pair%%:*}" package="${pair#*:}"
        if [[ "$command" == */* ]]; then
            [ -x "$command" ] || missing+=("$package")
        else
            command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "$(basename "$0"): installing ${missing[*]} (apt-get)"
        local sudo_=""
        [ "$(id -u)" -eq 0 ] || sudo_="sudo"
        $sudo_ apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# template_venv: the template's own tools in .venv from their lock (requirements-dev.txt: every package,
# hashed; made from requirements-dev.in), rebuilt only when the lock changes.
template_venv() {
    local venv=.venv
    local stamp="$venv/.requirements-$(sha256sum requirements-dev.txt | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "$(basename "$0"): creating $venv from requirements-dev.txt"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.txt
        touch "$stamp"
    fi
}
