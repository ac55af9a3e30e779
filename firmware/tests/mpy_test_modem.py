# The modem base and the choice of driver: network time from +CCLK, and the driver a board definition names.
from fakeuart import FakeUART


def test_cclk_to_utc():
    from modem import parse_cclk

    assert parse_cclk(b'+CCLK: "24/02/29,23:30:00+08"') == (2024, 2, 29, 21, 30, 0)  # +08 quarter hours = 2 h
    assert parse_cclk(b'+CCLK: "24/12/31,23:59:59-04"') == (2025, 1, 1, 0, 59, 59)
    assert parse_cclk(b'+CCLK: "04/01/01,00:00:00+00"') is None  # a year before 2020: not set by the network yet
    assert parse_cclk(b"+CCLK: garbage") is None


def test_epoch_seconds_and_back():
    from utc import epoch_seconds, utc_tuple

    assert epoch_seconds((1970, 1, 1, 0, 0, 0)) == 0
    assert epoch_seconds((2000, 3, 1, 12, 0, 1)) == 951912001
    for t in ((2024, 2, 29, 23, 59, 59), (2100, 3, 1, 0, 0, 0), (1999, 12, 31, 1, 2, 3)):
        assert utc_tuple(epoch_seconds(t)) == t


def test_driver_by_board_definition():
    from atchannel import ATChannel
    from modems import for_board

    class Board:
        MODEM = "simcom"

    at = ATChannel(FakeUART())
    assert type(for_board(Board, at)).__name__ == "SimCom"
    Board.MODEM = "quectel"
    assert type(for_board(Board, at)).__name__ == "Quectel"
    assert type(for_board(object(), at)).__name__ == "Modem"  # no MODEM: the generic 27.007 modem
