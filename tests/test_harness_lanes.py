"""Which worker a test goes to (harness/lanes.py): the runtime's servers in one lane, the Terraform plans in the
other, and a test that needs both a deployed profile and a server with the plans, so that the profiles are deployed
in one lane only."""
from harness.lanes import lane_of


class Item:
    def __init__(self, nodeid: str, markers=(), fixturenames=()):
        self.nodeid, self.markers, self.fixturenames = nodeid, set(markers), list(fixturenames)

    def get_closest_marker(self, name):
        return name if name in self.markers else None


def test_each_kind_of_test_has_its_lane():
    assert lane_of(Item("tests/dataplane/test_a.py::t", {"dataplane"})) == "runtime"
    assert lane_of(Item("tests/stack/test_b.py::t", {"terraform"}, ["deployed"])) == "plans"
    assert lane_of(Item("tests/orm/test_c.py::t", {"install"})) == "install"
    assert lane_of(Item("tests/test_d.py::t")) == "tests/test_d.py"


def test_a_test_on_a_deployed_profile_that_runs_a_server_goes_with_the_plans():
    assert lane_of(Item("tests/stack/test_e.py::t", {"terraform", "dataplane"}, ["deployed", "database"])) == "plans"
    assert lane_of(Item("tests/orm/test_f.py::t", {"terraform", "dataplane"}, ["fake"])) == "runtime"
