# shellcheck shell=bash
# Shell helpers shared by bench/run and bench/floor (sourced, not run).

# Whether something listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints a port in [LO, LO + SPAN) that nothing listens on, or fails after
# 100 tries. $RANDOM is 15 bits: two make a span of up to 2^30.
free_port() { # LO SPAN
  local p
  for _ in $(seq 1 100); do
    p=$(($1 + (RANDOM * 32768 + RANDOM) % $2))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  return 1
}
