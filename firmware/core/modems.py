# The modem driver a board definition names (board.MODEM), importing only that driver.


def for_board(board, at):
    """The driver for the board's modem (board.MODEM: "generic", "quectel" or "simcom") on AT channel `at`."""
    dialect = getattr(board, "MODEM", "generic")
    if dialect == "quectel":
        from quectel import Quectel

        return Quectel(at)
    if dialect == "simcom":
        from simcom import SimCom

        return SimCom(at)
    from modem import Modem

    return Modem(at)
