"""The demo city of Minghu (明湖市): a fictional city to try the hotline with.

Three districts, six streets, twelve communities (each one grid cell), a
dispatch desk, 23 functional departments, 26 categories, staff for every
role, and a few hundred historical tickets in every state, made by running the
real actions on a clock that walks through the past weeks, so that lists,
audit history and KPIs look like a working hotline's.

Every demo user's API token is ``demo-<username>``: this data is for trying
the system, never for production.
"""

from __future__ import annotations

import functools
import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from callcenter.actions import acd
from callcenter.actions.citizens import find_or_create_citizen
from callcenter.actions.directory import load_city
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.messages import send_reply
from callcenter.actions.surveys import answer_survey
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.domain.errors import HotlineError
from callcenter.domain.workflow import SYSTEM, Actor, Role, Step
from callcenter.runtime import Runtime
from callcenter.store.tables import departments, offers, queue_entries, surveys, users

CITY = "MH"
# every demo user signs in to the browser pages with this password (demo data only)
DEMO_PASSWORD = "demo12345"


@functools.cache
def demo_password_hash() -> str:
    """One Argon2 hash shared by the demo users (hashing is slow on purpose)."""
    from callcenter.domain.passwords import hash_password

    return hash_password(DEMO_PASSWORD)


DISTRICTS = [
    # code, zh, en, lon0, streets: (code, zh, en, keywords, communities)
    (
        "HB",
        "湖滨区",
        "Hubin District",
        120.00,
        [
            (
                "HB-HB",
                "湖滨街道",
                "Hubin Subdistrict",
                ["湖滨路", "湖滨街道", "荷花路", "Hubin Road"],
                [("荷花社区", "Hehua Community"), ("望湖社区", "Wanghu Community")],
            ),
            (
                "HB-LA",
                "柳岸街道",
                "Liu'an Subdistrict",
                ["柳岸", "柳岸路", "垂柳巷", "Liuan Road"],
                [("柳岸社区", "Liu'an Community"), ("春晓社区", "Chunxiao Community")],
            ),
        ],
    ),
    (
        "QS",
        "青山区",
        "Qingshan District",
        120.10,
        [
            (
                "QS-QS",
                "青山街道",
                "Qingshan Subdistrict",
                ["青山路", "青山街道", "翠屏路", "Qingshan Road"],
                [("翠屏社区", "Cuiping Community"), ("山前社区", "Shanqian Community")],
            ),
            (
                "QS-SL",
                "松林街道",
                "Songlin Subdistrict",
                ["松林", "松林路", "松涛巷", "Songlin Road"],
                [("松涛社区", "Songtao Community"), ("林荫社区", "Linyin Community")],
            ),
        ],
    ),
    (
        "XG",
        "新港区",
        "Xingang District",
        120.20,
        [
            (
                "XG-GW",
                "港湾街道",
                "Gangwan Subdistrict",
                ["港湾路", "港湾街道", "码头路", "Harbour Road"],
                [("码头社区", "Matou Community"), ("海景社区", "Haijing Community")],
            ),
            (
                "XG-XC",
                "新城街道",
                "Xincheng Subdistrict",
                ["新城大道", "新城街道", "创业路", "Xincheng Avenue"],
                [("创业社区", "Chuangye Community"), ("新城社区", "Xincheng Community")],
            ),
        ],
    ),
]

CITY_DEPARTMENTS = [
    ("MH-WATER", "water", "明湖市水务集团", "Minghu Water Group"),
    ("MH-POWER", "power", "明湖供电公司", "Minghu Power Supply Company"),
    ("MH-GAS", "gas", "明湖燃气集团", "Minghu Gas Group"),
    ("MH-TRANSPORT", "transport", "明湖市交通运输局", "Minghu Transport Bureau"),
    (
        "MH-LABOUR",
        "labour",
        "明湖市人力资源和社会保障局",
        "Minghu Human Resources and Social Security Bureau",
    ),
    ("MH-EDU", "education", "明湖市教育局", "Minghu Education Bureau"),
    ("MH-HEALTH", "health", "明湖市卫生健康委员会", "Minghu Health Commission"),
    ("MH-ENV", "environment", "明湖市生态环境局", "Minghu Ecology and Environment Bureau"),
    ("MH-MUNICIPAL", "municipal", "明湖市市政设施管理处", "Minghu Municipal Facilities Office"),
    ("MH-PARKS", "parks", "明湖市园林绿化局", "Minghu Parks and Greening Bureau"),
    ("MH-EMERGENCY", "emergency", "明湖市应急管理局", "Minghu Emergency Management Bureau"),
]

DISTRICT_DEPARTMENTS = [
    ("CG", "urban_management", "城市管理局", "Urban Management Bureau"),
    ("ZJ", "housing", "住房和城乡建设局", "Housing and Construction Bureau"),
    ("SJ", "market_regulation", "市场监督管理局", "Market Regulation Bureau"),
    ("MZ", "civil_affairs", "民政局", "Civil Affairs Bureau"),
]

CATEGORIES: list[dict[str, Any]] = [
    {
        "code": "street_light",
        "handle_working_days": 5,
        "name_zh": "路灯故障",
        "name_en": "Street light out",
        "department_kind": "municipal",
        "default_type": "help",
        "keywords_zh": ["路灯", "灯不亮", "路灯坏"],
        "keywords_en": ["street light", "streetlight", "lamp post"],
    },
    {
        "code": "road_damage",
        "name_zh": "道路破损",
        "name_en": "Damaged road",
        "department_kind": "municipal",
        "default_type": "help",
        "keywords_zh": ["路面", "坑洼", "井盖", "道路破损"],
        "keywords_en": ["pothole", "road damage", "manhole", "broken pavement"],
    },
    {
        "code": "water_outage",
        "handle_working_days": 1,
        "name_zh": "停水",
        "name_en": "Water outage",
        "department_kind": "water",
        "default_type": "help",
        "keywords_zh": ["停水", "没水", "水压低", "断水"],
        "keywords_en": ["no water", "water outage", "water pressure"],
    },
    {
        "code": "water_leak",
        "handle_working_days": 2,
        "name_zh": "供水管道漏水",
        "name_en": "Water main leak",
        "department_kind": "water",
        "default_type": "help",
        "keywords_zh": ["漏水", "爆管", "水管破"],
        "keywords_en": ["leak", "burst pipe", "water main"],
    },
    {
        "code": "power_outage",
        "handle_working_days": 1,
        "name_zh": "停电",
        "name_en": "Power cut",
        "department_kind": "power",
        "default_type": "help",
        "keywords_zh": ["停电", "没电", "断电"],
        "keywords_en": ["power cut", "blackout", "power outage", "no electricity"],
    },
    {
        "code": "gas_leak",
        "name_zh": "燃气泄漏",
        "name_en": "Gas leak",
        "department_kind": "gas",
        "default_type": "help",
        "default_priority": "urgent",
        "keywords_zh": ["燃气泄漏", "煤气味", "燃气味", "漏气"],
        "keywords_en": ["gas leak", "smell of gas", "smells of gas"],
    },
    {
        "code": "noise",
        "name_zh": "噪声扰民",
        "name_en": "Noise nuisance",
        "department_kind": "environment",
        "default_type": "complaint",
        "keywords_zh": ["噪音", "噪声", "太吵", "扰民"],
        "keywords_en": ["noise", "noisy", "loud music"],
    },
    {
        "code": "pollution",
        "name_zh": "环境污染",
        "name_en": "Pollution",
        "department_kind": "environment",
        "default_type": "report",
        "keywords_zh": ["污染", "排污", "黑烟", "臭味"],
        "keywords_en": ["pollution", "black smoke", "sewage", "stink"],
    },
    {
        "code": "garbage",
        "handle_working_days": 3,
        "name_zh": "垃圾清运",
        "name_en": "Rubbish collection",
        "department_kind": "urban_management",
        "default_type": "help",
        "keywords_zh": ["垃圾", "清运", "垃圾桶"],
        "keywords_en": ["garbage", "rubbish", "trash", "litter"],
    },
    {
        "code": "street_vendor",
        "name_zh": "占道经营",
        "name_en": "Street vending",
        "department_kind": "urban_management",
        "default_type": "complaint",
        "keywords_zh": ["占道", "摆摊", "摊贩"],
        "keywords_en": ["street vendor", "hawker", "stall on the pavement"],
    },
    {
        "code": "illegal_construction",
        "name_zh": "违法建设",
        "name_en": "Illegal construction",
        "department_kind": "urban_management",
        "default_type": "report",
        "keywords_zh": ["违建", "违章建筑", "私搭乱建"],
        "keywords_en": ["illegal construction", "illegal building", "unauthorised extension"],
    },
    {
        "code": "property_management",
        "name_zh": "物业服务",
        "name_en": "Property management",
        "department_kind": "housing",
        "default_type": "complaint",
        "keywords_zh": ["物业", "电梯", "物业费"],
        "keywords_en": ["property management", "elevator", "lift", "service charge"],
    },
    {
        "code": "building_safety",
        "name_zh": "房屋安全",
        "name_en": "Building safety",
        "department_kind": "housing",
        "default_type": "help",
        "keywords_zh": ["危房", "墙体裂缝", "房屋裂缝"],
        "keywords_en": ["crack in the wall", "unsafe building", "building crack"],
    },
    {
        "code": "food_safety",
        "name_zh": "食品安全",
        "name_en": "Food safety",
        "department_kind": "market_regulation",
        "default_type": "report",
        "keywords_zh": ["食品", "过期", "变质", "食物中毒"],
        "keywords_en": ["food safety", "expired food", "food poisoning"],
    },
    {
        "code": "consumer_rights",
        "name_zh": "消费维权",
        "name_en": "Consumer rights",
        "department_kind": "market_regulation",
        "default_type": "complaint",
        "keywords_zh": ["退款", "假货", "价格欺诈", "消费纠纷"],
        "keywords_en": ["refund", "fake goods", "overcharged", "consumer"],
    },
    {
        "code": "wage_arrears",
        "name_zh": "拖欠工资",
        "name_en": "Unpaid wages",
        "department_kind": "labour",
        "default_type": "complaint",
        "keywords_zh": ["欠薪", "拖欠工资", "工资没发"],
        "keywords_en": ["unpaid wages", "wages not paid", "salary not paid"],
    },
    {
        "code": "social_insurance",
        "name_zh": "社会保险",
        "name_en": "Social insurance",
        "department_kind": "labour",
        "default_type": "inquiry",
        "keywords_zh": ["社保", "养老保险", "医保", "失业金"],
        "keywords_en": ["social insurance", "pension", "medical insurance", "unemployment benefit"],
    },
    {
        "code": "elderly_care",
        "name_zh": "养老服务",
        "name_en": "Elderly care",
        "department_kind": "civil_affairs",
        "default_type": "help",
        "keywords_zh": ["养老", "老人", "低保", "高龄补贴"],
        "keywords_en": ["elderly", "old people", "care home", "allowance"],
    },
    {
        "code": "neighbour_dispute",
        "name_zh": "邻里纠纷",
        "name_en": "Neighbour dispute",
        "department_kind": "street",
        "default_type": "help",
        "keywords_zh": ["邻居", "邻里纠纷", "楼上"],
        "keywords_en": ["neighbour", "neighbor", "upstairs"],
    },
    {
        "code": "bus_service",
        "name_zh": "公交服务",
        "name_en": "Bus service",
        "department_kind": "transport",
        "default_type": "suggestion",
        "keywords_zh": ["公交", "公交车", "班次", "站台"],
        "keywords_en": ["bus", "bus stop", "timetable"],
    },
    {
        "code": "taxi",
        "name_zh": "出租车与网约车",
        "name_en": "Taxis and ride-hailing",
        "department_kind": "transport",
        "default_type": "complaint",
        "keywords_zh": ["出租车", "网约车", "拒载", "绕路"],
        "keywords_en": ["taxi", "ride-hailing", "cab driver"],
    },
    {
        "code": "school_enrolment",
        "name_zh": "入学咨询",
        "name_en": "School enrolment",
        "department_kind": "education",
        "default_type": "inquiry",
        "keywords_zh": ["入学", "学位", "报名", "学区"],
        "keywords_en": ["school place", "enrolment", "enrollment", "admission"],
    },
    {
        "code": "medical_service",
        "name_zh": "医疗服务",
        "name_en": "Medical services",
        "department_kind": "health",
        "default_type": "complaint",
        "keywords_zh": ["医院", "看病", "挂号", "医生"],
        "keywords_en": ["hospital", "doctor", "clinic", "appointment"],
    },
    {
        "code": "trees_greening",
        "name_zh": "树木绿化",
        "name_en": "Trees and greenery",
        "department_kind": "parks",
        "default_type": "help",
        "keywords_zh": ["树木", "树枝", "绿化", "草坪"],
        "keywords_en": ["tree", "branch", "greenery", "lawn"],
    },
    {
        "code": "safety_hazard",
        "name_zh": "安全隐患",
        "name_en": "Safety hazard",
        "department_kind": "emergency",
        "default_type": "report",
        "default_priority": "urgent",
        "keywords_zh": ["安全隐患", "消防通道", "堵塞通道"],
        "keywords_en": ["safety hazard", "fire exit", "blocked exit"],
    },
    {
        "code": "community_service",
        "name_zh": "社区服务",
        "name_en": "Community services",
        "department_kind": "community",
        "default_type": "inquiry",
        "keywords_zh": ["居委会", "社区服务", "开证明"],
        "keywords_en": ["residents committee", "community office", "certificate"],
    },
]

DESCRIPTIONS: dict[str, list[str]] = {
    "street_light": [
        "小区门口的路灯坏了好几天，晚上很黑",
        "{road}路灯不亮，行人不安全",
        "The street light outside my building on {road} has been out for a week",
    ],
    "road_damage": [
        "{road}路面有个大坑，电动车容易摔",
        "{road}井盖松动，车一过就响",
        "There is a deep pothole on {road}",
    ],
    "water_outage": [
        "家里停水了，也没有接到通知",
        "{road}一带从早上开始没水",
        "No water in our building since this morning",
    ],
    "water_leak": [
        "{road}路边水管破了，水一直在流",
        "小区里有漏水，地面都湿了",
        "A water main is leaking on {road}",
    ],
    "power_outage": [
        "我们楼停电三个小时了",
        "{road}整条街断电",
        "Power cut in our block for two hours",
    ],
    "gas_leak": [
        "楼道里有很重的煤气味",
        "厨房闻到燃气味，已经关了阀门",
        "I can smell gas in the stairwell",
    ],
    "noise": [
        "楼下烧烤店晚上太吵，影响休息",
        "工地夜间施工噪音扰民",
        "Loud music from the bar on {road} every night",
    ],
    "pollution": [
        "{road}附近工厂冒黑烟",
        "河里有排污，臭味很大",
        "Black smoke from a factory near {road}",
    ],
    "garbage": [
        "小区垃圾好几天没人清运",
        "{road}垃圾桶满了没人管",
        "Rubbish has not been collected for days on {road}",
    ],
    "street_vendor": [
        "{road}人行道上摆摊，行人没法走",
        "学校门口摊贩占道经营",
        "Hawkers block the pavement on {road}",
    ],
    "illegal_construction": [
        "邻居在楼顶私搭乱建",
        "{road}有人违章建筑",
        "Someone is building an illegal extension on {road}",
    ],
    "property_management": [
        "物业不修电梯，老人上下楼困难",
        "物业费乱收",
        "The lift in our building has been broken for a month and property management does nothing",
    ],
    "building_safety": [
        "房屋墙体出现裂缝，担心是危房",
        "楼道墙体裂缝越来越大",
        "There is a large crack in the wall of our building",
    ],
    "food_safety": [
        "超市卖过期食品",
        "饭店食物变质，吃了拉肚子",
        "A shop on {road} sells expired food",
    ],
    "consumer_rights": [
        "健身房倒闭不给退款",
        "网购买到假货，商家不理",
        "The gym closed and will not give a refund",
    ],
    "wage_arrears": [
        "公司拖欠工资三个月",
        "工地欠薪，老板联系不上",
        "My employer has not paid my wages for two months",
    ],
    "social_insurance": [
        "请问社保怎么转移",
        "咨询养老保险补缴政策",
        "How do I transfer my pension insurance?",
    ],
    "elderly_care": [
        "独居老人需要上门服务",
        "咨询高龄补贴怎么申请",
        "My elderly neighbour needs home care",
    ],
    "neighbour_dispute": [
        "楼上邻居漏水到我家，协商不成",
        "邻里纠纷，需要调解",
        "My upstairs neighbour's water leaks into my flat",
    ],
    "bus_service": ["建议增加公交班次", "公交车到站不停", "Please add more buses on route 12"],
    "taxi": ["出租车拒载", "网约车司机绕路多收费", "A taxi driver refused to take me"],
    "school_enrolment": [
        "请问小学入学需要什么材料",
        "咨询学区划分",
        "What documents are needed for school enrolment?",
    ],
    "medical_service": ["医院挂号太难", "医生态度不好", "Waited four hours at the hospital clinic"],
    "trees_greening": [
        "{road}树枝快断了，很危险",
        "小区绿化没人修剪",
        "A tree branch on {road} is about to fall",
    ],
    "safety_hazard": [
        "商场消防通道被堵塞",
        "楼道堆放杂物，存在安全隐患",
        "The fire exit of the mall on {road} is blocked",
    ],
    "community_service": [
        "去居委会开证明要带什么",
        "社区服务中心几点开门",
        "Where do I get a certificate from the residents committee?",
    ],
}

AGENT_ANSWERS = [
    "您好，您咨询的事项可通过“一网通办”平台办理，也可到所在街道便民服务中心咨询。",
    "您好，已为您查询，相关政策请以区人社部门最新公布的为准。",
    "Hello, you can apply online or at your street office; we have sent you the details.",
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "桂英",
]


def _box(lon0: float, lat0: float, dlon: float, dlat: float) -> dict[str, Any]:
    ring = [
        [lon0, lat0],
        [lon0 + dlon, lat0],
        [lon0 + dlon, lat0 + dlat],
        [lon0, lat0 + dlat],
        [lon0, lat0],
    ]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def city() -> dict[str, Any]:
    """The demo city as a directory description (see :func:`load_city`)."""
    depts: list[dict[str, Any]] = [
        {"code": CITY, "kind": "city", "name_zh": "明湖市", "name_en": "Minghu City"},
        {
            "code": "MH-DESK",
            "kind": "dispatch_desk",
            "name_zh": "12345 派单中心",
            "name_en": "12345 Dispatch Desk",
            "parent": CITY,
        },
    ]
    cells: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = [
        {"username": "admin", "display_name": "系统管理员", "role": "admin"},
        {
            "username": "supervisor",
            "display_name": "陈班长",
            "role": "supervisor",
            "phone": "+8613900000001",
        },
        {"username": "agent1", "display_name": "坐席 李娜", "role": "agent"},
        {"username": "agent2", "display_name": "坐席 王磊", "role": "agent"},
        {"username": "agent3", "display_name": "Agent Emma Liu", "role": "agent", "locale": "en"},
    ]
    phone = 13910000000

    def staff(code: str, name: str) -> None:
        nonlocal phone
        phone += 1
        users.append(
            {
                "username": code.lower(),
                "display_name": f"{name} 值班员",
                "role": "department",
                "department": code,
                "phone": f"+86{phone}",
            }
        )

    for code, kind, zh, en in CITY_DEPARTMENTS:
        phone += 1
        depts.append(
            {
                "code": code,
                "kind": kind,
                "name_zh": zh,
                "name_en": en,
                "parent": CITY,
                "duty_phone": f"+86{phone}",
            }
        )
        staff(code, zh)
    for d_index, (dcode, dzh, den, lon0, streets) in enumerate(DISTRICTS):
        depts.append(
            {
                "code": dcode,
                "kind": "district",
                "name_zh": dzh,
                "name_en": den,
                "parent": CITY,
                "keywords": [dzh],
            }
        )
        for suffix, kind, zh, en in DISTRICT_DEPARTMENTS:
            code = f"{dcode}-{suffix}"
            phone += 1
            depts.append(
                {
                    "code": code,
                    "kind": kind,
                    "name_zh": dzh + zh,
                    "name_en": f"{den} {en}",
                    "parent": dcode,
                    "duty_phone": f"+86{phone}",
                }
            )
            staff(code, dzh + zh)
        for s_index, (scode, szh, sen, keywords, communities) in enumerate(streets):
            phone += 1
            depts.append(
                {
                    "code": scode,
                    "kind": "street",
                    "name_zh": szh,
                    "name_en": sen,
                    "parent": dcode,
                    "keywords": keywords,
                    "duty_phone": f"+86{phone}",
                }
            )
            staff(scode, szh)
            for c_index, (czh, cen) in enumerate(communities):
                ccode = f"{scode}-{c_index + 1:02d}"
                depts.append(
                    {
                        "code": ccode,
                        "kind": "community",
                        "name_zh": czh,
                        "name_en": cen,
                        "parent": scode,
                        "keywords": [czh],
                    }
                )
                cells.append(
                    {
                        "code": f"GRID-{ccode}",
                        "name": f"{czh}网格",
                        "owner": ccode,
                        "geometry": _box(lon0 + 0.05 * c_index, 30.0 + 0.06 * s_index, 0.05, 0.06),
                    }
                )
        del d_index
    return {
        "departments": depts,
        "categories": CATEGORIES,
        "grid_cells": cells,
        "users": [
            dict(u, token=f"demo-{u['username']}", password_hash=demo_password_hash())
            for u in users
        ],
    }


@dataclass(order=True)
class _Next:
    at: datetime
    seq: int
    plan: dict[str, Any] = field(compare=False)


async def load_demo(
    rt: Runtime, *, tickets: int = 300, days: int = 45, seed: int = 12345
) -> dict[str, Any]:
    """Load the city and ``tickets`` historical tickets spread over the last ``days`` days.

    The runtime's clock must be a :class:`ManualClock`; it ends at the time it had.
    """
    clock = rt.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("load_demo needs a runtime with a ManualClock")
    end = clock.now()
    rng = random.Random(seed)
    clock.set(end - timedelta(days=days + 1))
    tokens = await load_city(rt, city(), actor=SYSTEM)

    async with rt.db.read() as conn:
        staff_rows = (await conn.execute(select(users))).all()
        dept_rows = (await conn.execute(select(departments))).all()
    by_role: dict[str, list[Actor]] = {}
    dept_staff: dict[int, Actor] = {}
    for row in staff_rows:
        actor = Actor(row.id, Role(row.role), row.display_name, row.department_id, row.locale)
        by_role.setdefault(row.role, []).append(actor)
        if row.department_id is not None:
            dept_staff[row.department_id] = actor
    roads = [
        kw
        for r in dept_rows
        if r.kind == "street"
        for kw in r.keywords
        if "路" in kw or kw.endswith(("Road", "Avenue"))
    ]
    cells = list(rt.directory.cells)

    queue: list[_Next] = []
    for index in range(tickets):
        created = (
            end - timedelta(days=days) + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        )
        created = rt.calendar.next_open(created) if rng.random() < 0.8 else created
        if created >= end:
            created = end - timedelta(hours=rng.uniform(1, 48))
        heapq.heappush(queue, _Next(created, index, {"index": index, "stage": "create"}))

    made: dict[int, dict[str, Any]] = {}
    counts = {"tickets": 0, "steps": 0}
    while queue:
        item = heapq.heappop(queue)
        if item.at >= end:
            continue
        clock.set(item.at)
        plan = item.plan
        try:
            nxt = await _play(rt, rng, plan, made, by_role, dept_staff, roads, cells, counts)
        except HotlineError:
            nxt = None  # a step the state no longer allows: the ticket simply stops there
        if nxt is not None:
            delay, stage = nxt
            plan = dict(plan, stage=stage)
            heapq.heappush(queue, _Next(item.at + delay, item.seq, plan))
    clock.set(end)
    assert rt.runner is not None
    await rt.runner.drain()
    for agent in by_role["agent"]:  # the night shift has gone home
        await acd.set_presence(rt, "away", actor=agent)
    async with rt.db.read() as conn:
        total = await conn.scalar(select(func.count()).select_from(departments))
    return {"tokens": tokens, "departments": int(total or 0), **counts}


async def _play(
    rt: Runtime,
    rng: random.Random,
    plan: dict[str, Any],
    made: dict[int, dict[str, Any]],
    by_role: dict[str, list[Actor]],
    dept_staff: dict[int, Actor],
    roads: list[str],
    cells: list[Any],
    counts: dict[str, int],
) -> tuple[timedelta, str] | None:
    index, stage = plan["index"], plan["stage"]
    hours = lambda lo, hi: timedelta(hours=rng.uniform(lo, hi))  # noqa: E731
    agent = rng.choice(by_role["agent"])
    supervisor = by_role["supervisor"][0]

    if stage == "create":
        category = rng.choice(CATEGORIES)
        template = rng.choice(DESCRIPTIONS[category["code"]])
        english = [r for r in roads if r.isascii()]
        chinese = [r for r in roads if not r.isascii()]
        text = template.format(road=rng.choice(english if template.isascii() else chinese))
        phone = f"+861{rng.choice('3578')}{rng.randrange(10**8, 10**9)}"
        channel = rng.choices(["sms", "voice", "web", "telegram"], [4, 5, 2, 1])[0]
        if channel == "sms":
            result = await receive_message(
                rt, Inbound("sms", "phone", phone, text, provider_id=f"DEMO{index}")
            )
            ticket = result.ticket
            if ticket is None:  # waits for an agent, as unrecognised texts do
                made[index] = {"conversation_id": result.conversation_id}
                return timedelta(minutes=rng.uniform(0.5, 8)), "answer"
        else:
            async with rt.transaction() as tx:
                citizen, _ = await find_or_create_citizen(
                    tx,
                    rt,
                    kind="phone",
                    value=phone,
                    actor=agent,
                    name=rng.choice(SURNAMES) + rng.choice(GIVEN),
                )
            cell = rng.choice(cells)
            point = cell.geometry.representative_point()
            located = rng.random() < 0.7
            ticket = await create_ticket(
                rt,
                TicketDraft(
                    description=text,
                    category=category["code"],
                    priority=category.get("default_priority", "normal"),
                    lat=point.y if located else None,
                    lon=point.x if located else None,
                    address=None
                    if located
                    else rng.choice([r for r in roads if not r.isascii()])
                    + f"{rng.randint(1, 300)}号",
                    citizen_id=citizen.id,
                    origin_channel=channel,
                ),
                actor=agent,
                dispatch=False,
            )
            if category["default_type"] == "inquiry" and rng.random() < 0.6:
                await take_step(
                    rt, ticket["id"], Step.DIRECT_ANSWER, actor=agent, text="已按政策口径答复市民。"
                )
                counts["tickets"] += 1
                return None
        made[index] = ticket
        counts["tickets"] += 1
        return (hours(0.1, 2), "dispatch") if ticket["state"] == "new" else (hours(1, 20), "sign")

    if stage == "answer":
        return await _answer(rt, rng, made[index]["conversation_id"], by_role)
    ticket = made[index]
    counts["steps"] += 1
    if stage == "dispatch":
        if ticket["routing"].get("to_desk"):
            choice = rng.choice(
                [d for d in rt.directory.departments if d.kind in ("municipal", "water")]
            )
            made[index] = await take_step(
                rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=choice.id
            )
        else:
            made[index] = await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent)
        return hours(1, 30), "sign"
    dept_actor = dept_staff.get(made[index]["department_id"] or -1)
    if dept_actor is None:
        return None
    if stage == "sign":
        if rng.random() < 0.05:
            made[index] = await take_step(
                rt, ticket["id"], Step.RETURN, actor=dept_actor, reason="不属于本单位职责范围"
            )
            return hours(0.5, 4), "dispatch"
        made[index] = await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=dept_actor)
        roll = rng.random()
        if roll < 0.06:
            return hours(10, 60), "extend"
        if roll < 0.12:
            return hours(24, 200), "urge"
        return hours(4, 240), "reply"
    if stage == "extend":
        made[index] = await take_step(
            rt,
            ticket["id"],
            Step.REQUEST_EXTENSION,
            actor=dept_actor,
            days=rng.randint(2, 5),
            reason="需协调多个部门",
        )
        return hours(1, 8), "approve"
    if stage == "approve":
        made[index] = await take_step(rt, ticket["id"], Step.APPROVE_EXTENSION, actor=supervisor)
        return hours(24, 200), "reply"
    if stage == "urge":
        made[index] = await take_step(rt, ticket["id"], Step.URGE, actor=agent, note="请尽快办理")
        return hours(4, 100), "reply"
    if stage == "reply":
        made[index] = await take_step(
            rt,
            ticket["id"],
            Step.REPLY,
            actor=dept_actor,
            text="已现场核实并处理完毕，感谢您的监督。",
        )
        return hours(1, 24), "close"
    if stage == "close":
        made[index] = await take_step(rt, ticket["id"], Step.CLOSE, actor=agent)
        return hours(2.5, 20), "survey"
    if stage == "survey":
        return await _survey(rt, rng, index, made)
    return None


async def _answer(
    rt: Runtime, rng: random.Random, conversation_id: int, by_role: dict[str, list[Actor]]
) -> tuple[timedelta, str] | None:
    """An agent takes a waiting conversation through the queue, answers and closes it."""
    agents = {a.id: a for a in by_role["agent"]}
    for agent in agents.values():
        await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer = (
            await conn.execute(
                select(offers.c.id, offers.c.agent_id)
                .join(queue_entries, queue_entries.c.id == offers.c.entry_id)
                .where(
                    queue_entries.c.conversation_id == conversation_id,
                    offers.c.state == "pending",
                )
            )
        ).first()
    if offer is None or offer.agent_id not in agents:
        return None
    agent = agents[offer.agent_id]
    await acd.accept_offer(rt, offer.id, actor=agent)
    await send_reply(rt, conversation_id, rng.choice(AGENT_ANSWERS), actor=agent)
    await acd.end_conversation(rt, conversation_id, wrap_up_code="information", actor=agent)
    return None


async def _survey(
    rt: Runtime, rng: random.Random, index: int, made: dict[int, dict[str, Any]]
) -> tuple[timedelta, str] | None:
    """The callback survey goes out and the citizen answers it, mostly content."""
    assert rt.runner is not None
    await rt.runner.drain()
    async with rt.db.read() as conn:
        survey = (
            await conn.execute(
                select(surveys.c.id)
                .where(surveys.c.ticket_id == made[index]["id"], surveys.c.state == "sent")
                .order_by(surveys.c.id.desc())
            )
        ).first()
    if survey is None or rng.random() < 0.15:  # unreachable, or never answers
        return None
    score = rng.choices([5, 4, 3, 2, 1], [62, 20, 8, 5, 5])[0]
    solved = score >= 3 and rng.random() < 0.93
    outcome = await answer_survey(rt, survey.id, score=score, solved=solved)
    if outcome["reopened"]:  # 重办: back to the department
        made[index] = outcome["ticket"]
        return timedelta(hours=rng.uniform(1, 20)), "sign"
    return None
