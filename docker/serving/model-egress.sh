#!/usr/bin/env bash
# Bars the model server's user from the instance metadata service, on the serving VM's host.
#
# The serving container runs `mlflow models serve` as user mlmodel, uid 10002 (Dockerfile-serving,
# serving/launcher.py), in the host's network (podman --network host), so the host's nftables see its
# sockets with that uid. The metadata service (169.254.169.254, and fd00:c1::a9fe:a9fe on IPv6) hands
# out the instance principal's credentials, which may read the VM's Vault secrets: that user may not reach
# it. DNS on port 53 stays open, since OCI's VCN resolver answers on the same address and an answer
# carries no credential. Every other user (the supervisor's 10001 reads Vault through it) is untouched.
#
# A table of our own (inet mlflow_model_egress), replaced whole in one transaction, so running it again
# changes nothing. firewalld (on by default on Oracle Linux) rewrites only its own tables and iptables'
# (filter, nat, mangle, raw, security), so it neither clashes with this one nor removes it; a reject here
# is final whatever firewalld's chains accept. Not nftables.service: firewalld's unit conflicts with it.
# The serving VM's mlflow-serving.service runs it before every start of the container
# (userdata/container.service.tftpl): the rule is back after a reboot before any model code runs, and
# the container does not start without it. The tests apply this same script in a network namespace of
# their own (tests/dataplane/test_serving_isolation.py).
# Needs nft (nftables) and root.
set -euo pipefail

MODEL_UID=10002
TABLE=mlflow_model_egress

nft "add table inet $TABLE
delete table inet $TABLE
table inet $TABLE {
  chain output {
    type filter hook output priority 0; policy accept;
    meta skuid $MODEL_UID ip daddr 169.254.169.254 udp dport 53 accept
    meta skuid $MODEL_UID ip daddr 169.254.169.254 tcp dport 53 accept
    meta skuid $MODEL_UID ip daddr 169.254.169.254 meta l4proto tcp counter reject with tcp reset
    meta skuid $MODEL_UID ip daddr 169.254.169.254 counter reject
    meta skuid $MODEL_UID ip6 daddr fd00:c1::a9fe:a9fe udp dport 53 accept
    meta skuid $MODEL_UID ip6 daddr fd00:c1::a9fe:a9fe tcp dport 53 accept
    meta skuid $MODEL_UID ip6 daddr fd00:c1::a9fe:a9fe meta l4proto tcp counter reject with tcp reset
    meta skuid $MODEL_UID ip6 daddr fd00:c1::a9fe:a9fe counter reject
  }
}"
