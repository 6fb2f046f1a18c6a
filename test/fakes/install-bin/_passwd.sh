# Sourced by the fake useradd/usermod/userdel/groupadd: their options, and edits of $prefix/etc/{passwd,group}.
prefix='' groups='' name=''
while [ $# -gt 0 ]; do
  case $1 in
    --prefix | -P) prefix=$2; shift ;;
    --groups | -G) groups=$2; shift ;;
    --home-dir | --shell | --comment | -d | -s | -c) shift ;;
    -*) ;;
    *) name=$1 ;;
  esac
  shift
done
add_to_groups() {
  local group
  for group in ${groups//,/ }; do
    sed -i -E "/^$group:/{s/:$/:$name/;t;s/$/,$name/}" "$prefix/etc/group"
  done
}
