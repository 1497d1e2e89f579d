"""The FIX layer: QuickFIX applications, the message codec and engine set-up.

With ``fixgate.simulator``, the only package that imports quickfix.
"""
