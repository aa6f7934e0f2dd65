"""onvm: the Python side of distributed openNetVM.

onvm.scaler   the per-host scaling daemon (``onvm-scaler``)
onvm.cli      the operator's CLI (``onvm``)
onvm.nf       the Python NF binding (libonvm_nf's burst API through cffi)
onvm.lab      lab-only tools for this machine's lab (``onvm-lab``): namespaces,
              veth ports, frame sender and counter, the demos; the product
              imports nothing from it

Code shared with the Ansible modules lives in the collection's module_utils
and is imported as ``ansible_collections.onvm.nfv.plugins.module_utils``.
"""
