# bash completion for ckpt(1), the ckptfs command line.
# Completes commands, sub-commands, options, operation ids (from `ckpt ops
# list --json`, when ckptd answers) and RUN/VERSION/FILE paths (from `ckpt ls
# --json`). Where the state dir, the socket and the mount are is ckpt's to
# say: every lookup runs ckpt with the global options already on the line
# (--state-dir, --socket, --mount), so completion never guesses a path.

# The global options that take a value, and those that do not.
_ckpt_global_arg="--socket --state-dir --mount"
_ckpt_global_flag="--json --quiet -q --help -h --version"

# _ckpt_json PY ARGS...: run ckpt ARGS with the line's global options and
# print what the Python expression PY makes of its JSON answer `d`.
_ckpt_json() {
	local py=$1
	shift
	ckpt "${_ckpt_g[@]}" "$@" --json 2>/dev/null |
		python3 -c "import json,sys
d=json.load(sys.stdin)
for x in $py: print(x)" 2>/dev/null
}

_ckpt_ops_ids() {
	_ckpt_json '[o["id"] for o in d["operations"]]' ops list
}

# RUN/, RUN/VERSION/, RUN/VERSION/FILE, level by level, as ckpt ls lists them.
_ckpt_mount_paths() {
	local cur=$1 dir p
	case $cur in
	/* | .*)
		compgen -f -- "$cur"
		return
		;;
	*/*/*)
		dir=$(cut -d/ -f1-2 <<<"$cur")
		_ckpt_json '[p["path"] for p in d]' ls "$dir" | sed "s|^|$dir/|"
		;;
	*/*)
		dir=${cur%%/*}
		_ckpt_json '[v["version"] for v in d]' ls "$dir" | sed "s|^|$dir/|; s|$|/|"
		;;
	*)
		_ckpt_json '[r["run"] for r in d]' ls | sed 's|$|/|'
		;;
	esac | while IFS= read -r p; do
		[[ $p == "$cur"* ]] && printf '%s\n' "$p"
	done
}

_ckpt() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]:-}
	local cmds="run submit ops checkpoints ls show verify diff commit gc policy daemon dashboard help"
	local opts="" cmd="" sub="" w i npos=0
	_ckpt_g=()

	COMPREPLY=()
	# The command is the first word that is neither an option nor a global
	# option's value; npos counts the words after it (sub is the first).
	# The global options are kept for ckpt's lookups.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		# Global options come before or after the command.
		case " $_ckpt_global_arg " in
		*" $w "*)
			_ckpt_g+=("$w" "${COMP_WORDS[i + 1]:-}")
			i=$((i + 1))
			continue
			;;
		esac
		case $w in
		--socket=* | --state-dir=* | --mount=*) _ckpt_g+=("$w") ;;
		--set | --idempotency-key | --max-attempts | --heartbeat-timeout | --name | \
			--project | --model | --dataset | --gpus | --batch-size | --epochs | --lr | \
			--status | --max-age-days | --keep-last | --keep-best | --metric | --store | \
			--resolution | --after)
			[ -n "$cmd" ] && i=$((i + 1)) ;;
		-*) ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=$w
			else
				npos=$((npos + 1))
				[ $npos -eq 1 ] && sub=$w
			fi
			;;
		esac
	done

	# The value of a global option: a directory or a socket file.
	case $prev in
	--state-dir | --mount | --store)
		compopt -o dirnames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
		;;
	--socket)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	esac

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$_ckpt_global_arg $_ckpt_global_flag" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$cmds" -- "$cur")
		fi
		return
	fi
	case $cmd in
	help)
		[ $npos -eq 0 ] && mapfile -t COMPREPLY < <(compgen -W "${cmds% help}" -- "$cur")
		return
		;;
	run) opts="--set --idempotency-key --max-attempts --heartbeat-timeout --name --project" ;;
	submit) opts="--set --idempotency-key --project --model --dataset --gpus --batch-size --epochs --lr --name --json" ;;
	ops | operations)
		opts="--json --follow --status --resumable"
		[ "$sub" = metrics ] && opts="--json --csv --resolution --after"
		if [ "$prev" = --resolution ]; then
			mapfile -t COMPREPLY < <(compgen -W "step 30s 5m 1h" -- "$cur")
			return
		fi
		if [ "$prev" = --status ]; then
			mapfile -t COMPREPLY < <(compgen -W "PENDING RUNNING RECOVERING COMPLETED FAILED CANCELLED" -- "$cur")
			return
		fi
		if [ $npos -eq 0 ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "list status resume cancel logs events metrics" -- "$cur")
			return
		fi
		if [ $npos -eq 1 ] && [ "$sub" != list ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_ckpt_ops_ids)" -- "$cur")
			return
		fi
		;;
	checkpoints)
		opts="--json --force --max-age-days"
		if [ $npos -eq 0 ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "show delete stats cleanup" -- "$cur")
			return
		fi
		if [ $npos -eq 1 ] && [[ $cur != -* ]] && { [ "$sub" = show ] || [ "$sub" = delete ]; }; then
			mapfile -t COMPREPLY < <(compgen -W "$(_ckpt_ops_ids)" -- "$cur")
			return
		fi
		;;
	daemon)
		opts="--json"
		if [ $npos -eq 0 ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "status stop" -- "$cur")
			return
		fi
		;;
	ls | show | verify | diff | commit | policy)
		opts="--json"
		[ "$cmd" = verify ] && opts="$opts --store --quiet"
		[ "$cmd" = policy ] && opts="$opts --keep-last --keep-best --metric --max-age-days"
		if [[ $cur != -* ]]; then
			compopt -o nospace 2>/dev/null
			mapfile -t COMPREPLY < <(_ckpt_mount_paths "$cur")
			return
		fi
		;;
	gc) opts="--store --json" ;;
	esac
	if { [ "$cmd" = run ] || [ "$cmd" = submit ]; } && [[ $cur != -* ]]; then
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
	fi
	mapfile -t COMPREPLY < <(compgen -W "$opts $_ckpt_global_arg --help" -- "$cur")
}
complete -F _ckpt ckpt
