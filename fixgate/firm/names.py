"""Where a firm's gateways meet in NATS JetStream: the stream, its subjects, the key-value bucket and
its keys. Every part that reads or writes them (the gateway's link, the CLI, the drop copy, the firm
view) takes its names from here.

- Stream ``FIXGATE_<FIRM>``, subjects ``fixgate.<firm>.<gateway>.<kind>``: ``orders`` (the engine's
  events, one message per journal batch of 256-byte ``fg_event`` records), ``risk`` (risk-state
  changes), ``admin`` (operators' actions and the rest of the audit trail, JSON).
- Bucket ``fixgate_<firm>``: ``kill`` (the firm-wide kill switch), ``confirm.<gateway>`` (what each
  gateway did with it), ``gateway.<gateway>`` (each gateway's announcement: build, state, lease),
  ``build.expected`` (the fleet's build) and ``build.confirmed.<gateway>`` (an operator's consent to
  a gateway that runs another).
"""

from __future__ import annotations

from dataclasses import dataclass

# Message headers (besides JetStream's own Nats-Msg-Id).
GATEWAY = "Fixgate-Gateway"
JOURNAL = "Fixgate-Journal"            # the journal's id: a new state directory is a new journal
SEQUENCE = "Fixgate-Seq"               # the journal's batch or note sequence, contiguous per journal
WRITTEN_NS = "Fixgate-Written-Ns"      # when the journal wrote it
COUNT = "Fixgate-Count"                # events in an orders message
FORMAT = "Fixgate-Format"
PART = "Fixgate-Part"                  # "k/n": an orders batch too large for one message, in n parts

ORDERS = "orders"
RISK = "risk"
ADMIN = "admin"
KINDS = (ORDERS, RISK, ADMIN)
EVENTS_FORMAT = "fg_event/256"          # an orders message: whole 256-byte records (fixgate.core.events)
NOTE_FORMAT = "json"

KILL = "kill"
EXPECTED_BUILD = "build.expected"


@dataclass(frozen=True)
class FirmNames:
    """The names of one firm (`firm` is a NATS subject token, checked by the configuration)."""

    firm: str

    @property
    def stream(self) -> str:
        return f"FIXGATE_{self.firm}"

    @property
    def bucket(self) -> str:
        return f"fixgate_{self.firm}"

    @property
    def all_subjects(self) -> str:
        return f"fixgate.{self.firm}.>"

    def subject(self, gateway: str, kind: str) -> str:
        return f"fixgate.{self.firm}.{gateway}.{kind}"

    def message_id(self, gateway: str, journal_id: str, kind: str, seq: int) -> str:
        """The id JetStream de-duplicates on: the same journal entry is the same message."""
        return f"{gateway}.{journal_id}.{kind}.{seq}"

    @staticmethod
    def confirm_key(gateway: str) -> str:
        return f"confirm.{gateway}"

    @staticmethod
    def gateway_key(gateway: str) -> str:
        return f"gateway.{gateway}"

    @staticmethod
    def confirmed_build_key(gateway: str) -> str:
        return f"build.confirmed.{gateway}"


def note_kind(note_kind_name: str) -> str:
    """The subject kind of a journal note: risk-state changes apart from the rest of the audit trail."""
    return RISK if note_kind_name == "risk_state_changed" else ADMIN
