"""Single-machine lab helpers: namespaces and veth ports, a managed onvm-mgr
process, hugepages, and a packet sender/receiver.  Used by the tests, the
benchmarks and the single-host demo; never touches eth0 (addresses only in
198.18.0.0/15, and the lab's veths carry none)."""
