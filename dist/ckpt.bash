# bash completion for ckpt(1), the ckptfs command line.
# Completes commands, sub-commands, options, operation ids (from `ckpt ops
# list --json`, when ckptd answers) and RUN/VERSION paths in the mount.

_ckpt_ops_ids() {
	ckpt ops list --json 2>/dev/null |
		python3 -c 'import json,sys; [print(o["id"]) for o in json.load(sys.stdin)["operations"]]' 2>/dev/null
}

_ckpt_mount_paths() {
	local mnt=${CKPT_MOUNT:-${CKPT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/ckptfs}/mnt}
	[ "$(id -u)" = 0 ] && [ -z "${CKPT_MOUNT:-}${CKPT_STATE_DIR:-}" ] && mnt=/var/lib/ckptfs/mnt
	[ -d "$mnt" ] || return
	(cd "$mnt" 2>/dev/null && compgen -d -- "$1" | sed 's|$|/|')
}

_ckpt() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]:-} sub=${COMP_WORDS[2]:-}
	local global="--socket --state-dir --mount --json --quiet --help --version"
	local cmds="run submit ops checkpoints ls show verify diff commit gc policy daemon dashboard"
	local opts=""

	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$global" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$cmds" -- "$cur")
		fi
		return
	fi
	case $cmd in
	run) opts="--set --idempotency-key --max-attempts --heartbeat-timeout --name --project" ;;
	submit) opts="--set --idempotency-key --project --model --dataset --gpus --batch-size --epochs --lr --name --json" ;;
	ops)
		opts="--json --follow --status --resumable"
		[ "$sub" = metrics ] && opts="--json --csv --resolution --after"
		if [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "list status resume cancel logs events metrics" -- "$cur")
			return
		fi
		if [ "${COMP_WORDS[COMP_CWORD - 1]}" = --status ]; then
			mapfile -t COMPREPLY < <(compgen -W "PENDING RUNNING RECOVERING COMPLETED FAILED CANCELLED" -- "$cur")
			return
		fi
		if [ "$COMP_CWORD" -eq 3 ] && [ "$sub" != list ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_ckpt_ops_ids)" -- "$cur")
			return
		fi
		;;
	checkpoints)
		opts="--json --force --max-age-days"
		if [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "show delete stats cleanup" -- "$cur")
			return
		fi
		if [ "$COMP_CWORD" -eq 3 ] && [[ $cur != -* ]] && { [ "$sub" = show ] || [ "$sub" = delete ]; }; then
			mapfile -t COMPREPLY < <(compgen -W "$(_ckpt_ops_ids)" -- "$cur")
			return
		fi
		;;
	daemon)
		opts="--json"
		if [ "$COMP_CWORD" -eq 2 ]; then
			mapfile -t COMPREPLY < <(compgen -W "status stop" -- "$cur")
			return
		fi
		;;
	ls | show | verify | diff | commit | policy)
		opts="--json --mount"
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
	if [ "$cmd" = run ] && [[ $cur != -* ]]; then
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
	fi
	if [ "$cmd" = submit ] && [[ $cur != -* ]]; then
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
	fi
	mapfile -t COMPREPLY < <(compgen -W "$opts --socket --state-dir --help" -- "$cur")
}
complete -F _ckpt ckpt
