"""the control-plane loop: state → scheduler → engine → events → store and ledger"""
