"""The fake LeadSquared is as strict as seed 003 and backends.md Part 1: keys, regions, leads, errors, 25 per 5 s."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.loopback import Failure, ManualClock
from tests.fakes.leadsquared import (
    ACCESS_KEY,
    ANA_ID,
    BOB_ID,
    INACTIVE_ID,
    RAJESH_ID,
    SALES_ACCESS_KEY,
    SALES_SECRET_KEY,
    SAMPLE_LEAD,
    SECRET_KEY,
    STAFF,
    FakeLeadSquared,
)
from tests.fakes.testing import client, free_port, get, standalone

KEYS = {"x-LSQ-AccessKey": ACCESS_KEY, "x-LSQ-SecretKey": SECRET_KEY}
LM = "LeadManagement.svc"


def attrs(**fields: str) -> list[dict[str, str]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def fake(clock):
    server = FakeLeadSquared(clock=clock, rate_limit=None).start()
    yield server
    server.stop()


@pytest.fixture
def lsq(fake):
    with client(f"{fake.url}/v2/", headers=KEYS, timeout=2) as http:
        yield http


def create(lsq: httpx.Client, **fields: str) -> str:
    reply = lsq.post(f"{LM}/Lead.Create", json=attrs(**fields))
    assert reply.status_code == 200, reply.text
    assert reply.json()["Status"] == "Success"
    return reply.json()["Message"]["Id"]


def exception(reply: httpx.Response) -> tuple[int, str, str]:
    body = reply.json()
    assert body["Status"] == "Error"
    return reply.status_code, body.get("ExceptionType"), body["ExceptionMessage"]


# -- keys and regions --------------------------------------------------------------------------


def test_keys_in_headers_or_the_url_and_the_url_ones_are_recorded(fake, lsq):
    assert lsq.get("UserManagement.svc/Users.Get").status_code == 200
    assert fake.keys_in_url == []
    query = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    assert get(f"{fake.url}/v2/UserManagement.svc/Users.Get", params=query).status_code == 200
    assert [r.path for r in fake.keys_in_url] == ["/v2/UserManagement.svc/Users.Get"]


@pytest.mark.parametrize(
    "headers",
    [{}, {**KEYS, "x-LSQ-SecretKey": "wrong"}, {"x-LSQ-AccessKey": "u$nobody", "x-LSQ-SecretKey": SECRET_KEY}],
)
def test_wrong_keys_are_401(fake, headers):
    reply = get(f"{fake.url}/v2/UserManagement.svc/Users.Get", headers=headers)
    assert exception(reply)[:2] == (401, "MXUnAuthorizedAccessException")


def test_who_am_i_names_the_regions_api_host(lsq):
    me = lsq.get("Authentication.svc/UserByAccessKey.Get").json()
    assert me["LSQCommonServiceURLs"] == {"api": "api-in21.leadsquared.com", "app": "app-in21.leadsquared.com"}
    assert (me["Role"], me["DefaultCountryCode"], me["PassPhrase"]) == ("Administrator", "91", "leadbot@example.com")
    assert me["OrgId"] and me["TimeZone"] == "Asia/Kolkata"


def test_a_wrong_region_host_refuses_all_but_who_am_i():
    with FakeLeadSquared(region="us11", wrong_region=True) as fake, client(headers=KEYS) as http:
        me = http.get(f"{fake.url}/v2/Authentication.svc/UserByAccessKey.Get")
        assert me.status_code == 200 and me.json()["LSQCommonServiceURLs"]["api"] == "api-us11.leadsquared.com"
        refused = http.get(f"{fake.url}/v2/{LM}/Leads.GetById", params={"id": SAMPLE_LEAD})
        assert exception(refused)[:2] == (401, "MXUnAuthorizedAccessException")


def test_unknown_paths_are_404_and_wrong_methods_405(lsq):
    assert lsq.get(f"{LM}/Leads.GetByEmailAddress", params={"emailaddress": "a@b.co"}).status_code == 404
    assert lsq.get(f"{LM}/Lead.Create").status_code == 405


# -- leads ---------------------------------------------------------------------------------------


def test_a_new_lead_is_shown_with_its_owner_stage_dates_and_phone_format(lsq, clock):
    lead_id = create(lsq, FirstName="Tom", LastName="Sawyer", EmailAddress="tom@example.com", Phone="9845098450")
    (lead,) = lsq.get(f"{LM}/Leads.GetById", params={"id": lead_id}).json()
    assert lead["ProspectID"] == lead_id and lead["Phone"] == "+91-9845098450"
    assert (lead["ProspectStage"], lead["OwnerIdName"], lead["OwnerIdEmailAddress"]) == (
        "Prospect",
        "Lead Bot",
        "leadbot@example.com",
    )
    assert len(lead["CreatedOn"]) == 19 and lead["CreatedOn"][10] == " "  # YYYY-MM-DD HH:MM:SS
    assert lead["mx_City"] is None and lead["Mobile"] is None
    assert lsq.get(f"{LM}/Leads.GetById", params={"id": "no-such-lead"}).json() == []


def test_a_new_lead_needs_a_name_email_or_phone(lsq):
    reply = lsq.post(f"{LM}/Lead.Create", json=attrs(Source="Web", mx_City="Pune"))
    assert exception(reply)[:2] == (500, "MXMandatoryAttributeMissingException")


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (attrs(FirstName="A", mx_Colour="red"), 500, "MXUnknownAttributeException"),
        (attrs(FirstName="A", ProspectID="x"), 500, "MXInvalidInputException"),
        (attrs(FirstName="A", EmailAddress="not-an-email"), 500, "MXInvalidInputException"),
        (attrs(FirstName="A", Phone="98450 98450"), 500, "MXInvalidInputException"),
        (attrs(FirstName="A", ProspectStage="Hot"), 500, "MXInvalidInputException"),
        (attrs(FirstName="A", OwnerId=INACTIVE_ID), 500, "MXInvalidInputException"),
        ({"FirstName": "A"}, 400, "MXInvalidInputException"),
        ([{"Name": "FirstName", "Value": "A"}], 400, "MXInvalidInputException"),
    ],
)
def test_wrong_attributes_are_refused(lsq, fake, body, status, kind):
    reply = lsq.post(f"{LM}/Lead.Create", json=body)
    assert exception(reply)[:2] == (status, kind)
    assert len(fake.leads) == 1  # only the seed's lead


def test_a_body_must_be_json_with_its_content_type(lsq):
    reply = lsq.post(f"{LM}/Lead.Create", content=b'[{"Attribute":"FirstName","Value":"A"}]')
    assert exception(reply) == (400, "MXInvalidInputException", "Content-Type must be application/json")
    reply = lsq.post(f"{LM}/Lead.Create", content=b"[{", headers={"Content-Type": "application/json"})
    assert exception(reply)[0] == 400


def test_email_and_phone_are_unique_whatever_their_form(lsq):
    create(lsq, FirstName="Tom", EmailAddress="tom@example.com", Phone="+91-9845098450")
    email = lsq.post(f"{LM}/Lead.Create", json=attrs(EmailAddress="TOM@example.com"))
    assert exception(email) == (
        500,
        "MXDuplicateEntryException",
        "Duplicate entry 'TOM@example.com' for key 'UQ_Prospect_Base_EmailAddress'",
    )
    for phone in ("9845098450", "+919845098450", "+91-9845098450"):
        reply = lsq.post(f"{LM}/Lead.Create", json=attrs(FirstName="Other", Phone=phone))
        assert exception(reply)[1:] == (
            "MXDuplicateEntryException",
            "Duplicate entry '+91-9845098450' for key 'UQ_Prospect_Base_Phone'",
        )


def test_exceptions_can_come_on_http_200():
    with FakeLeadSquared(exception_status=200) as fake, client(headers=KEYS) as http:
        reply = http.post(f"{fake.url}/v2/{LM}/Lead.Update", json=attrs(FirstName="A"))
        assert exception(reply) == (
            200,
            "MXMandatoryAttributeMissingException",
            "'leadId' is mandatory for updating lead",
        )


def test_update_changes_only_what_is_sent(lsq):
    lead_id = create(lsq, FirstName="Tom", EmailAddress="tom@example.com")
    reply = lsq.post(f"{LM}/Lead.Update", params={"leadId": lead_id}, json=attrs(ProspectStage="Qualified"))
    assert reply.json() == {"Status": "Success", "Message": {"AffectedRows": 1}}
    (lead,) = lsq.get(f"{LM}/Leads.GetById", params={"id": lead_id}).json()
    assert (lead["FirstName"], lead["ProspectStage"]) == ("Tom", "Qualified")
    owner = lsq.post(f"{LM}/Lead.Update", params={"leadId": lead_id}, json=attrs(OwnerId=BOB_ID))
    assert owner.status_code == 200
    assert lsq.get(f"{LM}/Leads.GetById", params={"id": lead_id}).json()[0]["OwnerIdName"] == "Bob Kumar"
    missing = lsq.post(f"{LM}/Lead.Update", json=attrs(FirstName="A"))
    assert exception(missing) == (
        500,
        "MXMandatoryAttributeMissingException",
        "'leadId' is mandatory for updating lead",
    )
    unknown = lsq.post(f"{LM}/Lead.Update", params={"leadId": "nope"}, json=attrs(FirstName="A"))
    assert exception(unknown) == (500, "MXInvalidEntityException", "Lead does not exist in the system")


def test_lookups_by_email_and_phone(lsq, clock):
    tom = create(lsq, FirstName="Tom", EmailAddress="tom@example.com", Phone="+91-9845098450")
    clock.advance(1)
    huck = create(lsq, FirstName="Huck", Mobile="+91-9845098450")  # the same number, as a Mobile
    by_email = lsq.get(f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": "Tom@Example.com"}).json()
    assert [lead["ProspectID"] for lead in by_email] == [tom]
    assert lsq.get(f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": "x@example.com"}).json() == []
    for phone in ("9845098450", "919845098450"):
        found = lsq.get(f"{LM}/RetrieveLeadByPhoneNumber", params={"phone": phone}).json()
        assert [lead["ProspectID"] for lead in found] == [huck]  # the latest activity wins
    clock.advance(1)
    lsq.post(f"{LM}/CreateNote", json={"RelatedProspectId": tom, "Note": "called"})
    found = lsq.get(f"{LM}/RetrieveLeadByPhoneNumber", params={"phone": "9845098450"}).json()
    assert [lead["ProspectID"] for lead in found] == [tom]
    for formatted in ("+91-9845098450", "98450 98450", "+919845098450"):
        assert lsq.get(f"{LM}/RetrieveLeadByPhoneNumber", params={"phone": formatted}).json() == []


def test_quick_search_looks_in_names_email_company_and_phone_digits(lsq):
    lead_id = create(lsq, FirstName="Tom", LastName="Sawyer", EmailAddress="tom@river.example", Phone="9845098450")
    for key in ("sawyer", "Tom Saw", "river.example", "5098"):
        assert [lead["ProspectID"] for lead in lsq.get(f"{LM}/Leads.GetByQuickSearch", params={"key": key}).json()] == [
            lead_id
        ]
    assert lsq.get(f"{LM}/Leads.GetByQuickSearch", params={"key": "becky"}).json() == []


def test_search_by_criteria_with_columns_sorting_and_paging(lsq):
    for n in range(1, 6):
        create(lsq, FirstName=f"Lead{n}", LastName="Smith" if n % 2 else "Jones", mx_City="Pune")
    body = {
        "Parameter": {"LookupName": "LastName", "LookupValue": "Smith", "SqlOperator": "="},
        "Columns": {"Include_CSV": "FirstName, LastName"},
        "Sorting": {"ColumnName": "FirstName", "Direction": "1"},
        "Paging": {"PageIndex": 1, "PageSize": 2},
    }
    page = lsq.post(f"{LM}/Leads.Get", json=body).json()
    assert [row["FirstName"] for row in page] == ["Lead5", "Lead3"] and set(page[0]) == {
        "ProspectID",
        "FirstName",
        "LastName",
    }
    body["Paging"]["PageIndex"] = 2
    assert [row["FirstName"] for row in lsq.post(f"{LM}/Leads.Get", json=body).json()] == ["Lead1"]
    like = {"Parameter": {"LookupName": "FirstName", "LookupValue": "lead%", "SqlOperator": "LIKE"}}
    assert len(lsq.post(f"{LM}/Leads.Get", json=like).json()) == 5
    newer = {"Parameter": {"LookupName": "ProspectAutoId", "LookupValue": "4", "SqlOperator": ">="}}
    assert [row["FirstName"] for row in lsq.post(f"{LM}/Leads.Get", json=newer).json()] == ["Lead3", "Lead4", "Lead5"]
    bad = {"Parameter": {"LookupName": "FirstName", "LookupValue": "x", "SqlOperator": "~"}}
    assert exception(lsq.post(f"{LM}/Leads.Get", json=bad))[1] == "MXInvalidInputException"
    unknown = {**body, "Columns": {"Include_CSV": "FirstName,Colour"}}
    assert exception(lsq.post(f"{LM}/Leads.Get", json=unknown))[1] == "MXUnknownAttributeException"


def test_metadata_lists_the_stages_with_the_extra_one():
    with FakeLeadSquared(extra_stages=("Counselled",)) as fake, client(headers=KEYS) as http:
        fields = http.get(f"{fake.url}/v2/{LM}/LeadsMetaData.Get").json()
        stage = next(f for f in fields if f["SchemaName"] == "ProspectStage")
        assert stage["DataType"] == "Select"
        assert [o["Value"] for o in stage["Options"]] == ["Prospect", "Opportunity", "Customer", "Counselled"]
        assert {"EmailAddress", "Phone", "Mobile", "OwnerId", "mx_City"} <= {f["SchemaName"] for f in fields}
        only = http.get(f"{fake.url}/v2/{LM}/LeadsMetaData.Get", params={"schemaName": "ProspectStage"}).json()
        assert [f["SchemaName"] for f in only] == ["ProspectStage"]


# -- users, notes, tasks, activities -----------------------------------------------------------


def test_users_and_a_user_by_email(lsq):
    users = lsq.get("UserManagement.svc/Users.Get").json()
    assert {u["ID"] for u in users if u["StatusCode"] == 0} == set(STAFF.values())
    assert any(u["StatusCode"] == 1 for u in users)
    (ana,) = lsq.get(
        "UserManagement.svc/User/Retrieve/ByEmailAddress", params={"emailAddress": "ana.silva@example.com"}
    ).json()
    assert ana["UserId"] == ANA_ID
    gone = lsq.get("UserManagement.svc/User/Retrieve/ByEmailAddress", params={"emailAddress": "old.hand@example.com"})
    assert gone.json() == []


def test_notes_are_kept_as_sent_and_listed(lsq):
    lead_id = create(lsq, FirstName="Tom")
    note = lsq.post(f"{LM}/CreateNote", json={"RelatedProspectId": lead_id, "Note": "marker-9 prefers email"})
    assert note.json()["Status"] == "Success" and note.json()["Message"]["Id"]
    assert exception(lsq.post(f"{LM}/CreateNote", json={"RelatedProspectId": lead_id}))[1] == (
        "MXMandatoryAttributeMissingException"
    )
    assert exception(lsq.post(f"{LM}/CreateNote", json={"RelatedProspectId": "nope", "Note": "x"}))[1] == (
        "MXInvalidEntityException"
    )
    listed = lsq.post(f"{LM}/RetrieveNote", json={"Parameter": {"RelatedId": lead_id}}).json()
    assert listed["RecordCount"] == 1 and listed["List"][0]["Note"] == "marker-9 prefers email"
    assert lsq.get(f"{LM}/RetrieveNote", params={"leadId": lead_id}).json()["RecordCount"] == 1


def test_tasks_are_checked_created_updated_and_listed_for_their_lead(lsq):
    lead_id = create(lsq, FirstName="Tom")
    task = {
        "Name": "Call back",
        "RelatedEntity": 1,
        "RelatedEntityId": lead_id,
        "DueDate": "2024-05-02 10:00:00",
        "OwnerEmailAddress": "ana.silva@example.com",
        "TaskType": {"Name": "Follow Up"},
        "NotifyBy": "1000",
    }
    for broken, kind in (
        ({"DueDate": "02/05/2024"}, "MXInvalidInputException"),
        ({"TaskType": {"Name": "Party"}}, "MXInvalidInputException"),
        ({"RelatedEntityId": "nope"}, "MXInvalidEntityException"),
        ({"OwnerEmailAddress": "nobody@example.com"}, "MXInvalidInputException"),
        ({"Colour": "red"}, "MXUnknownAttributeException"),
    ):
        assert exception(lsq.post("Task.svc/Create", json={**task, **broken}))[1] == kind
    assert exception(lsq.post("Task.svc/Create", json={k: v for k, v in task.items() if k != "DueDate"}))[1] == (
        "MXMandatoryAttributeMissingException"
    )
    task_id = lsq.post("Task.svc/Create", json=task).json()["Message"]["Id"]
    (stored,) = lsq.get("Task.svc/Retrieve.GetById", params={"id": task_id}).json()
    assert (stored["OwnerId"], stored["DueDate"], stored["StatusCode"]) == (ANA_ID, "2024-05-02 10:00:00.000", 0)
    updated = lsq.post("Task.svc/Update", json={"UserTaskId": task_id, "StatusCode": 1}).json()
    assert updated["Status"] == "Success" and updated["Message"]["AffectedRows"] == 1 and updated["Message"]["AutoId"]
    listed = lsq.get(f"{LM}/RetrieveTaskByLeadId", params={"leadId": lead_id}).json()
    assert listed["RecordCount"] == 1 and listed["TaskList"][0]["Status"] == "Completed"
    assert lsq.get("Task.svc/Retrieve.GetById", params={"id": "nope"}).json() == []


def test_activities_of_a_known_type_are_posted_and_retrieved(lsq):
    lead_id = create(lsq, FirstName="Tom")
    types = lsq.get("ProspectActivity.svc/ActivityTypes.Get").json()
    assert {"ActivityEvent", "ActivityEventName", "Score", "Direction"} <= set(types[0])
    code = lsq.post("ProspectActivity.svc/CreateType", json={"ActivityEventName": "Slack Thread", "Score": 1}).json()
    code = code["Message"]["Id"]
    assert any(t["ActivityEvent"] == code for t in lsq.get("ProspectActivity.svc/ActivityTypes.Get").json())
    unknown = {"RelatedProspectId": lead_id, "ActivityEvent": 999, "ActivityNote": "x"}
    assert exception(lsq.post("ProspectActivity.svc/Create", json=unknown))[1] == "MXInvalidActivityException"
    posted = {
        "RelatedProspectId": lead_id,
        "ActivityEvent": code,
        "ActivityNote": "marker-3 talked",
        "ActivityDateTime": "2024-05-01 09:00:00",
        "Fields": [{"SchemaName": "mx_Custom_1", "Value": "thread-1"}],
    }
    assert lsq.post("ProspectActivity.svc/Create", json=posted).json()["Status"] == "Success"
    got = lsq.post(
        "ProspectActivity.svc/Retrieve", params={"leadId": lead_id}, json={"Parameter": {"ActivityEvent": code}}
    )
    (activity,) = got.json()["ProspectActivities"]
    assert (activity["EventCode"], activity["CreatedOn"]) == (code, "2024-05-01 09:00:00")
    assert activity["Data"] == {"ActivityEvent_Note": "marker-3 talked", "mx_Custom_1": "thread-1"}
    by_email = {"EmailAddress": "new@example.com", "ActivityEvent": code, "FirstName": "New"}
    assert lsq.post("ProspectActivity.svc/Create", json=by_email).json()["Status"] == "Success"
    assert len(lsq.get(f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": "new@example.com"}).json()) == 1


# -- opportunities (seed 003) --------------------------------------------------------------------


def test_opportunities_of_the_seed_lead_in_the_seeds_shape(lsq):
    url = "OpportunityManagement.svc/GetOpportunitiesOfLead"
    everything = lsq.post(url, params={"leadId": SAMPLE_LEAD}).json()
    assert everything["RecordCount"] == 12 and len(everything["List"]) == 12
    loan = next(o for o in everything["List"] if o["OpportunityId"] == "4597c076-be5a-4ba2-9b08-ecd21626750f")
    assert {k: loan[k] for k in ("mx_Custom_1", "mx_Custom_2", "Status", "mx_Custom_6", "Owner", "OwnerName")} == {
        "mx_Custom_1": "Manish Garg - Loan",
        "mx_Custom_2": "Prospecting",
        "Status": "Open",
        "mx_Custom_6": "2500000",
        "Owner": RAJESH_ID,
        "OwnerName": "Rajesh Aggarwal",
    }
    assert (loan["LeadOwner"], loan["Phone"], loan["Total"], loan["PACreatedOn"]) == (
        "Rohan Sane",
        "+91-9999999999",
        "12",
        "2020-09-16 05:43:00",
    )
    body = {
        "Columns": {"Include_CSV": "mx_Custom_3,Owner,Status,mx_Custom_6,mx_Custom_8"},
        "Paging": {"PageIndex": 3, "PageSize": 5},
        "Sorting": {"ColumnName": "mx_Custom_6", "Direction": "0"},
    }
    last = lsq.post(url, params={"leadId": SAMPLE_LEAD}, json=body).json()
    assert last["RecordCount"] == 12 and [o["mx_Custom_6"] for o in last["List"]] == ["200,000", "2500000"]
    assert "mx_Custom_3" in last["List"][0]
    loans = lsq.post(url, params={"leadId": SAMPLE_LEAD, "opportunityType": "12005"}).json()
    assert loans["RecordCount"] == 6 and {o["OpportunityEvent"] for o in loans["List"]} == {"12005"}
    assert exception(lsq.post(url))[1:] == ("MXMandatoryAttributeMissingException", "'leadId' is mandatory")
    assert lsq.post(url, params={"leadId": "nope"}).json() == {"RecordCount": 0, "List": []}


def test_opportunities_can_be_added_for_a_new_lead(lsq, fake):
    lead_id = create(lsq, FirstName="Tom")
    fake.add_opportunity(lead_id, "Tom - Sofa", stage="Negotiation", value="900")
    listed = lsq.post("OpportunityManagement.svc/GetOpportunitiesOfLead", params={"leadId": lead_id}).json()
    assert [(o["mx_Custom_1"], o["mx_Custom_2"], o["FirstName"]) for o in listed["List"]] == [
        ("Tom - Sofa", "Negotiation", "Tom")
    ]


# -- rate limit, failures, restart -------------------------------------------------------------


def test_the_26th_call_in_5_seconds_is_429_until_the_clock_moves_on():
    clock = ManualClock()
    with FakeLeadSquared(clock=clock) as fake, client(f"{fake.url}/v2/", headers=KEYS) as lsq:
        assert all(lsq.get("UserManagement.svc/Users.Get").status_code == 200 for _ in range(25))
        refused = lsq.get("UserManagement.svc/Users.Get")
        assert exception(refused) == (
            429,
            "MXAPIRateLimitExceededException",
            "API calls exceeded the limit of 25 in 5 second(s)",
        )
        assert "Retry-After" not in refused.headers
        sales = {"x-LSQ-AccessKey": SALES_ACCESS_KEY, "x-LSQ-SecretKey": SALES_SECRET_KEY}
        assert lsq.get("UserManagement.svc/Users.Get", headers=sales).status_code == 200  # its own window
        clock.advance(4.99)
        assert lsq.get("UserManagement.svc/Users.Get").status_code == 429
        clock.advance(0.01)
        assert lsq.get("UserManagement.svc/Users.Get").status_code == 200
        assert fake.throttled == 2


def test_the_rate_limit_holds_under_concurrent_clients():
    limits = httpx.Limits(max_connections=10)
    with FakeLeadSquared(clock=ManualClock()) as fake, client(headers=KEYS, timeout=5, limits=limits) as http:

        def call(_: int) -> int:
            return http.get(f"{fake.url}/v2/UserManagement.svc/Users.Get").status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            codes = list(pool.map(call, range(40)))
    assert (codes.count(200), codes.count(429), fake.throttled) == (25, 15, 15)


def test_a_late_create_lands_when_applied_and_ids_survive_a_restart(lsq, fake):
    fake.fail("POST", f"/v2/{LM}/Lead.Create", Failure("late"))
    with pytest.raises(httpx.ReadTimeout):
        lsq.post(f"{LM}/Lead.Create", json=attrs(FirstName="Late", EmailAddress="late@example.com"), timeout=0.2)
    assert lsq.get(f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": "late@example.com"}).json() == []
    (answer,) = fake.apply_parked()
    assert answer.body["Status"] == "Success"
    fake.restart()
    (late,) = lsq.get(f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": "late@example.com"}).json()
    after = create(lsq, FirstName="After")
    assert lsq.get(f"{LM}/Leads.GetById", params={"id": after}).json()[0]["ProspectAutoId"] == str(
        int(late["ProspectAutoId"]) + 1
    )


def test_standalone_prints_its_keys_and_users(tmp_path):
    port = free_port()
    with standalone("tests.fakes.leadsquared", port, "--state", str(tmp_path / "lsq.json")) as banner:
        assert ACCESS_KEY in banner and SECRET_KEY in banner and "ana.silva@example.com" in banner
        me = get(f"http://127.0.0.1:{port}/v2/Authentication.svc/UserByAccessKey.Get", headers=KEYS)
        assert me.json()["LSQCommonServiceURLs"]["api"] == "api-in21.leadsquared.com"
