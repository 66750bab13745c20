"""The pure part of the ARP sweep: Ethernet frames in, (ip, mac) out; anything else ignored."""

from scanner.probes.arp import build_arp_request, parse_arp_frame

# An ARP reply as a lab Hikvision camera sends it (captured in the scanner namespace with tcpdump -xx):
# 198.18.0.2 is-at 28:57:be:40:00:00, to the scanner 198.18.0.1 (02:00:00:00:00:01).
REPLY = bytes.fromhex(
    "020000000001" "2857be400000" "0806"          # Ethernet: dst, src, type ARP
    "0001" "0800" "06" "04" "0002"                # Ethernet/IPv4, hlen 6, plen 4, op reply
    "2857be400000" "c6120002"                     # sender MAC, sender IP 198.18.0.2
    "020000000001" "c6120001"                     # target MAC, target IP 198.18.0.1
)


def test_a_reply_gives_the_senders_ip_and_mac():
    assert parse_arp_frame(REPLY) == {"ip": "198.18.0.2", "mac": "28:57:be:40:00:00"}


def test_requests_other_protocols_and_junk_are_ignored():
    request = REPLY[:20] + b"\x00\x01" + REPLY[22:]
    assert parse_arp_frame(request) is None
    assert parse_arp_frame(REPLY[:12] + b"\x08\x00" + REPLY[14:]) is None  # IPv4, not ARP
    assert parse_arp_frame(REPLY[:30]) is None
    assert parse_arp_frame(b"") is None
    zero_mac = REPLY[:22] + bytes(6) + REPLY[28:]
    assert parse_arp_frame(zero_mac) is None


def test_the_request_frame_is_the_one_scapy_builds():
    from scapy.layers.l2 import ARP, Ether

    ours = build_arp_request("02:00:00:00:00:01", "198.18.0.1", "198.18.3.77")
    theirs = bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")
                   / ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="198.18.0.1", pdst="198.18.3.77"))
    assert ours == theirs and len(ours) == 42
    assert parse_arp_frame(ours) is None  # a request, not a reply
